# PostgreSQL with pgvector (the base image) and RUM (ranked full text, docs/search.md) for docker-compose.yml.
FROM pgvector/pgvector:pg16
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-16-rum \
 && rm -rf /var/lib/apt/lists/*

#!/usr/bin/env python3
"""Regenerates services/domain/iana.rs from the machine's tz database (Debian's tzdata package):
every zone and link name of /usr/share/zoneinfo/tzdata.zi, and the codes of /usr/share/zoneinfo/iso3166.tab."""
import pathlib

ZONEINFO = pathlib.Path("/usr/share/zoneinfo")
TARGET = pathlib.Path(__file__).resolve().parent.parent / "services/domain/iana.rs"


def chunk(items, width=116):
    lines, cur = [], "   "
    for item in items:
        token = ' "%s",' % item
        if len(cur) + len(token) > width:
            lines.append(cur)
            cur = "   "
        cur += token
    lines.append(cur)
    return "\n".join(lines)


def main():
    zi = (ZONEINFO / "tzdata.zi").read_text().splitlines()
    version = zi[0].lstrip("# ").strip()
    names = set()
    for line in zi:
        parts = line.split()
        if parts and parts[0] == "Z":
            names.add(parts[1])
        elif parts and parts[0] == "L":
            names.add(parts[2])
    codes = sorted(
        line.split("\t")[0]
        for line in (ZONEINFO / "iso3166.tab").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    text = TARGET.read_text()
    head, _, rest = text.partition("pub const TIME_ZONES")
    tail = rest[rest.index("/// Whether `name`"):]
    head = head.replace(head[head.index("(version"):head.index(": every")], f"({version}")
    body = (
        f"pub const TIME_ZONES: &[&str] = &[\n{chunk(sorted(names))}\n];\n\n"
        "/// Every assigned ISO 3166-1 alpha-2 country code.\n"
        f"pub const COUNTRIES: &[&str] = &[\n{chunk(codes)}\n];\n\n"
    )
    TARGET.write_text(head + body + tail)
    print(f"{TARGET}: {len(names)} time zones, {len(codes)} countries ({version})")


if __name__ == "__main__":
    main()

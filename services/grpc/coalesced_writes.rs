//! One `write` per unary response. HTTP/2 (h2) sends a gRPC response as three frames: headers, the message in a
//! DATA frame and the trailers (`grpc-status`). On a transport that takes vectored writes, h2 keeps every DATA
//! payload of 256 bytes or more as a buffer of its own and flushes the socket before it queues the next frame, so
//! a Get (about 560 bytes) cost two writes, the second one the 10-byte trailers: two segments, and the client woken
//! twice. A transport without vectored writes has h2 copy payloads under 1 KiB into its frame buffer instead, so
//! headers, message and trailers leave in one write.
//!
//! [`CoalescedWrites`] is that transport over a TCP stream: it reports no vectored writes and keeps writes under
//! [`SMALL`] bytes until the writer flushes (h2 flushes after every round of frames; TLS after every record it
//! writes) or a larger write follows, which then leaves with them in one `writev`. So a large DATA frame (a List)
//! still costs one write for its frame header and payload, as with vectored writes.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Writes shorter than this are kept until the flush (or the next larger write).
pub const SMALL: usize = 1024;

/// Most bytes kept before they are written out anyway.
const MAX_KEPT: usize = 64 * 1024;

/// A stream whose small writes leave together, at the flush. See the module's documentation.
#[derive(Debug)]
pub struct CoalescedWrites<T> {
    inner: T,
    kept: Vec<u8>,
}

impl<T> CoalescedWrites<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Self { inner, kept: Vec::new() }
    }
}

impl<T: AsyncWrite + Unpin> CoalescedWrites<T> {
    /// Writes out everything kept.
    fn poll_write_kept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.kept.is_empty() {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.kept))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.kept.drain(..written);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CoalescedWrites<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CoalescedWrites<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.len() < SMALL && this.kept.len() + buf.len() <= MAX_KEPT {
            this.kept.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        // What is kept leaves first, in the same call as `buf` where the socket takes both.
        while !this.kept.is_empty() {
            let both = [IoSlice::new(&this.kept), IoSlice::new(buf)];
            let written = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, &both))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            if written > this.kept.len() {
                let of_buf = written - this.kept.len();
                this.kept.clear();
                return Poll::Ready(Ok(of_buf));
            }
            this.kept.drain(..written);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_kept(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_kept(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    /// No: this is what makes h2 copy small DATA payloads into its frame buffer (see the module's documentation).
    fn is_write_vectored(&self) -> bool {
        false
    }
}

impl Connected for CoalescedWrites<TcpStream> {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A sink that records each write it was given, as the socket would see them.
    #[derive(Default)]
    struct Writes(Vec<Vec<u8>>);

    impl AsyncWrite for Writes {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.get_mut().0.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
            let len = all.len();
            self.get_mut().0.push(all);
            Poll::Ready(Ok(len))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn small_writes_leave_together_at_the_flush() -> io::Result<()> {
        let mut io = CoalescedWrites::new(Writes::default());
        io.write_all(b"headers").await?;
        io.write_all(b"message").await?;
        io.write_all(b"trailers").await?;
        assert!(io.inner.0.is_empty(), "nothing leaves before the flush");
        io.flush().await?;
        assert_eq!(io.inner.0, vec![b"headersmessagetrailers".to_vec()]);
        Ok(())
    }

    #[tokio::test]
    async fn a_large_write_takes_what_was_kept_with_it() -> io::Result<()> {
        let mut io = CoalescedWrites::new(Writes::default());
        let payload = vec![7u8; SMALL];
        io.write_all(b"frame header").await?;
        io.write_all(&payload).await?;
        io.write_all(b"trailers").await?;
        io.shutdown().await?;
        let mut first = b"frame header".to_vec();
        first.extend_from_slice(&payload);
        assert_eq!(io.inner.0, vec![first, b"trailers".to_vec()]);
        Ok(())
    }

    #[tokio::test]
    async fn bytes_arrive_whole_and_in_order_over_a_socket() -> io::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let expected = sent.clone();
        let writer = tokio::spawn(async move {
            let (socket, _) = listener.accept().await?;
            let mut io = CoalescedWrites::new(socket);
            // Every size around the threshold, small and large mixed, as h2 and TLS write.
            let mut at = 0;
            for size in (1..3 * SMALL).step_by(97).cycle() {
                let end = (at + size).min(sent.len());
                io.write_all(&sent[at..end]).await?;
                at = end;
                if at == sent.len() {
                    break;
                }
            }
            io.shutdown().await
        });
        let mut received = Vec::new();
        tokio::net::TcpStream::connect(address).await?.read_to_end(&mut received).await?;
        writer.await??;
        assert_eq!(received, expected);
        Ok(())
    }
}

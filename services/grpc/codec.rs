//! The protobuf codec of every eventdata service: prost's encoding, with one difference in decoding. tonic-prost
//! reports a message that does not decode as INTERNAL (the gRPC status guide's choice for a peer that speaks the
//! protocol wrong); for a server that is a bad request, so it is INVALID_ARGUMENT with the usual BadRequest and
//! ErrorInfo (`MALFORMED_MESSAGE`). Bytes that are not a valid message and Structs nested beyond prost's recursion
//! limit both land here. build.rs names this codec for the generated servers (and clients).

use std::marker::PhantomData;

use prost::Message;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstEncoder};

/// [`ProstCodec`] with request decoding failures reported as INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct ProtoCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for ProtoCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for ProtoCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProtoDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProtoDecoder(PhantomData)
    }
}

/// Decodes `U`; a failure is the sender's malformed message.
#[derive(Debug, Clone)]
pub struct ProtoDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for ProtoDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(buf).map(Some).map_err(|err| super::status::malformed_message(&err))
    }
}

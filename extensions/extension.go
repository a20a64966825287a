package extensions

import "io"

// The RSV bits of a frame's first byte that an extension may own.
const (
	RSV1 byte = 0x40
	RSV2 byte = 0x20
	RSV3 byte = 0x10
)

// Extension is a configured WebSocket extension. One value serves many
// connections, so implementations must be safe for concurrent use.
type Extension interface {
	// Name is the extension token, as in "permessage-deflate".
	Name() string

	// RSV returns the RSV bits the extension's frames may carry.
	RSV() byte

	// ClientOffer returns the offer a client sends.
	ClientOffer() Offer

	// ClientActivate is called with the server's response to the offer.
	// It returns the session for the connection, or an error that fails
	// the handshake.
	ClientActivate(response Offer) (Session, error)

	// ServerNegotiate is called with every offer of this extension the
	// client made, in the client's order of preference. It returns the
	// response and the session for the first offer it accepts, or
	// ok == false to decline them all.
	ServerNegotiate(offers []Offer) (response Offer, s Session, ok bool)
}

// Message describes a message being encoded.
type Message struct {
	Binary bool
	Size   int64 // payload size when known in advance, else -1
}

// Session is an extension negotiated on one connection.
type Session interface {
	// Decode returns a reader of a received message's payload as this
	// extension hands it on; rsv holds the RSV bits of the message's
	// first frame. It returns src itself when the message does not use
	// the extension. The reader must consume src to its end.
	Decode(src io.Reader, rsv byte) (io.Reader, error)

	// Encode returns a writer that encodes one outgoing message into dst,
	// and the RSV bits to set on the message's first frame. Closing the
	// writer finishes the message but does not close dst.
	Encode(dst io.Writer, m Message) (w io.WriteCloser, rsv byte, err error)

	// Close releases the session's resources when the connection ends.
	Close() error
}

// SharedEncoder is implemented by sessions whose encoding of a message
// depends on nothing but the message and EncodingKey, so a message
// prepared for broadcast is encoded once per key and shared.
type SharedEncoder interface {
	EncodingKey() string
}

package realtime

import (
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/websocket"
)

// message is one message on its way to sockets: a hub broadcast, which
// is shared, numbered and kept for resuming, or the text of one Send. A
// broadcast's wire forms are made once, on first use, and shared by
// every socket that sends it, so a broadcast to many sockets is encoded
// once per transport.
type message struct {
	text   string
	shared bool   // a broadcast: use the shared wire forms
	seq    uint64 // broadcasts only
	id     string // broadcasts only
	at     time.Time

	esOnce    sync.Once
	es        *eventsource.EncodedEvent // "id: ID\ndata: TEXT\n\n"
	v1Once    sync.Once
	v1        *websocket.PreparedMessage // "ID\nTEXT", under Subprotocol
	plainOnce sync.Once
	plain     *websocket.PreparedMessage // "TEXT", for plain WebSocket clients
}

// newMessage checks text and normalizes its line ends.
func newMessage(text string) (*message, error) {
	if !utf8.ValidString(text) {
		return nil, errInvalidUTF8
	}
	return &message{text: normalizeLineEnds(text)}, nil
}

// normalizeLineEnds turns CRLF and CR into LF. An EventSource client
// receives every line end as LF, whatever was sent (the format splits
// data into lines and joins them with LF), so doing the same for
// WebSocket makes a message arrive identical on both transports.
func normalizeLineEnds(s string) string {
	if strings.IndexByte(s, '\r') < 0 {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

// event returns the broadcast as an encoded EventSource event.
func (m *message) event() *eventsource.EncodedEvent {
	m.esOnce.Do(func() {
		// The id never holds a line break or NUL and text is valid, so
		// encoding cannot fail.
		m.es, _ = eventsource.Encode(eventsource.Event{ID: m.id, Data: m.text})
	})
	return m.es
}

// framedV1 returns the broadcast framed for a Subprotocol client.
func (m *message) framedV1() *websocket.PreparedMessage {
	m.v1Once.Do(func() {
		b := make([]byte, 0, len(m.id)+1+len(m.text))
		b = append(append(append(b, m.id...), '\n'), m.text...)
		m.v1, _ = websocket.NewPreparedMessage(websocket.MessageText, b)
	})
	return m.v1
}

// framedPlain returns the broadcast framed for a plain WebSocket client.
func (m *message) framedPlain() *websocket.PreparedMessage {
	m.plainOnce.Do(func() {
		m.plain, _ = websocket.NewPreparedMessage(websocket.MessageText, []byte(m.text))
	})
	return m.plain
}

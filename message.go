package realtime

import (
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/realtime-go/realtime/eventsource"
	"github.com/realtime-go/realtime/websocket"
)

// kind tells what a queued message is. Only channel messages are shared
// by sockets and numbered; the rest are frames of one socket (or, for
// presence events, of the v2 sockets of one channel), rare enough to be
// encoded per socket.
type kind uint8

const (
	kindSend         kind = iota // Socket.Send, Hub.SendTo: data only, no id
	kindChannel                  // a channel message: numbered, shared, kept
	kindMark                     // a join's position in the cursor, before its replay; nothing is written
	kindSubscribed               // "subscribed CHANNEL" + fresh, resumed or failed
	kindUnsubscribed             // "unsubscribed CHANNEL" + reason; left drops the cursor entry
	kindRefused                  // "unsubscribed CHANNEL" + reason, for a refused subscribe: the cursor stays
	kindLost                     // "lost CHANNEL": the channel restarted at pos
	kindJoin                     // presence join event (v2 only)
	kindLeave                    // presence leave event (v2 only)
	kindPresence                 // answer to a presence request (v2 only)
	kindError                    // "error" + text (v2 only)
	kindForget                   // drop the cursor entry of hash; nothing is written
	kindHeartbeat                // "heartbeat" + the interval in ms (v2 only): the link is alive
)

// header is the v2 header word of each kind that is written.
var header = [...]string{
	kindSend:         "message",
	kindChannel:      "message",
	kindSubscribed:   "subscribed",
	kindUnsubscribed: "unsubscribed",
	kindRefused:      "unsubscribed",
	kindLost:         "lost",
	kindJoin:         "join",
	kindLeave:        "leave",
	kindPresence:     "presence",
	kindError:        "error",
	kindHeartbeat:    "heartbeat",
}

// message is one message on its way to sockets. A channel message is
// shared by every socket of the channel, numbered by the broker and kept
// in the channel's cache for resuming. Its wire forms for a socket whose
// cursor holds that channel only are made once, on first use, and
// shared by every such socket, so a message to many sockets is encoded
// once per wire form: the id of such a socket after the message depends
// on the channel and the position alone.
type message struct {
	kind    kind
	channel string
	hash    uint64 // kindChannel: channelHash(channel)
	pos     Position
	text    string
	at      time.Time
	early   bool // kindSubscribed: the join came before the hello, which carried its position

	// A channel message delivered live: its place in the deliveries of
	// its channel, and the message delivered after it once there is one.
	// A socket queues a run of them as one entry (see queued).
	seq  uint64
	next *message

	idOnce    sync.Once
	id        string // the one-channel cursor after this message
	esOnce    sync.Once
	es        *eventsource.EncodedEvent // v1: "id: ID\ndata: TEXT\n\n"
	es2Once   sync.Once
	es2       *eventsource.EncodedEvent // v2: "id: ID\ndata: message CHANNEL\ndata: TEXT\n\n"
	v1Once    sync.Once
	v1        *websocket.PreparedMessage // "ID\nTEXT", under Subprotocol
	v2Once    sync.Once
	v2        *websocket.PreparedMessage // "ID\nmessage CHANNEL\nTEXT", under SubprotocolV2
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

// oneID returns the id of a socket whose cursor holds m's channel only,
// after m.
func (m *message) oneID() string {
	m.idOnce.Do(func() {
		var c cursor
		c.set(m.channel, m.pos)
		m.id = c.encode()
	})
	return m.id
}

// v2Data returns the data of m under the v2 protocol: "HEADER\nTEXT",
// or "HEADER" alone for a frame without text. HEADER is the kind's word
// and, but for a Send and an error, the channel.
func (m *message) v2Data() string {
	h := header[m.kind]
	if m.kind != kindSend && m.kind != kindError && m.kind != kindHeartbeat {
		h += " " + m.channel
	}
	return h + "\n" + m.text
}

// event returns the channel message as an encoded v1 EventSource event.
func (m *message) event() *eventsource.EncodedEvent {
	m.esOnce.Do(func() {
		// The id never holds a line break or NUL and text is valid, so
		// encoding cannot fail.
		m.es, _ = eventsource.Encode(eventsource.Event{ID: m.oneID(), Data: m.text})
	})
	return m.es
}

// eventV2 returns the channel message as an encoded v2 EventSource event.
func (m *message) eventV2() *eventsource.EncodedEvent {
	m.es2Once.Do(func() {
		m.es2, _ = eventsource.Encode(eventsource.Event{ID: m.oneID(), Data: m.v2Data()})
	})
	return m.es2
}

// framedV1 returns the channel message framed for a Subprotocol client.
func (m *message) framedV1() *websocket.PreparedMessage {
	m.v1Once.Do(func() {
		m.v1, _ = websocket.NewPreparedMessage(websocket.MessageText, frame(m.oneID(), m.text))
	})
	return m.v1
}

// framedV2 returns the channel message framed for a SubprotocolV2 client.
func (m *message) framedV2() *websocket.PreparedMessage {
	m.v2Once.Do(func() {
		m.v2, _ = websocket.NewPreparedMessage(websocket.MessageText, frame(m.oneID(), m.v2Data()))
	})
	return m.v2
}

// framedPlain returns the channel message framed for a plain WebSocket client.
func (m *message) framedPlain() *websocket.PreparedMessage {
	m.plainOnce.Do(func() {
		m.plain, _ = websocket.NewPreparedMessage(websocket.MessageText, []byte(m.text))
	})
	return m.plain
}

// frame returns "ID\nDATA", the WebSocket frame of both protocols.
func frame(id, data string) []byte {
	b := make([]byte, 0, len(id)+1+len(data))
	return append(append(append(b, id...), '\n'), data...)
}

package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/realtime-go/realtime/internal/quote"
)

// The names of the realtime.v2 wire protocol (see package realtime),
// repeated so that a client does not link the server package; a test
// checks that both agree.
const (
	socketSubprotocolV2 = "realtime.v2"
	protocolParam       = "protocol" // the query parameter that asks an event stream for v2
	fallbackParam       = "fallback" // the query parameter of a v2 event stream after a failed WebSocket
	protocolHeader      = "Realtime-Protocol"
	maxChannelName      = 200
)

// protocol is the version of the wire protocol a connection speaks.
type protocol uint8

const (
	protoPlain protocol = iota // a WebSocket without a subprotocol
	protoV1
	protoV2
)

func (p protocol) String() string {
	switch p {
	case protoV1:
		return socketSubprotocol
	case protoV2:
		return socketSubprotocolV2
	}
	return ""
}

// Kind is what a Message is. Under realtime.v1 every message is a
// KindMessage without a channel.
type Kind uint8

const (
	// KindMessage is a message: one published to Channel, or, when
	// Channel is empty, one the server sent to this socket only.
	KindMessage Kind = iota

	// KindSubscribed: the socket is in Channel, on the server's doing or
	// after Subscribe. Status says whether the messages missed since the
	// last event id were replayed (they came just before).
	KindSubscribed

	// KindUnsubscribed: the socket left Channel (Data "left"), or the
	// server refused to subscribe it, Data being the reason. The channel
	// is no longer among Subscriptions, and is not asked for again after
	// a reconnection. A refusal may be temporary (the server could not
	// reach its broker): Subscribe again if the reason calls for it.
	KindUnsubscribed

	// KindLost: mid-stream the server lost its place in Channel (the
	// broker lost the stream, or the node fell behind its history):
	// messages may be missing; live ones follow.
	KindLost

	// KindJoin and KindLeave: Entry joined or left Channel's presence.
	KindJoin
	KindLeave

	// KindPresence: who is in Channel, as Data, a JSON array of
	// PresenceEntry: a presence list that no call to Presence waits
	// for.
	KindPresence

	// KindError: the server could not parse a request of this client;
	// Data is its explanation.
	KindError
)

var kindNames = [...]string{"message", "subscribed", "unsubscribed", "lost", "join", "leave", "presence", "error"}

// The kinds the Socket handles itself and never hands to Next: a
// server's heartbeat (Data, its interval in milliseconds, feeds the idle
// watchdog), and a well-formed message of a kind this client does not
// know, which servers may add without a new protocol version.
const (
	kindHeartbeat Kind = iota + Kind(len(kindNames))
	kindUnknown
)

// heartbeatKind is the kind word of a heartbeat message.
const heartbeatKind = "heartbeat"

// String returns the kind's name on the wire: "message", "subscribed",
// "unsubscribed", "lost", "join", "leave", "presence" or "error".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// SubscribeStatus is how a subscription started: the Status of a
// KindSubscribed message.
type SubscribeStatus string

const (
	// SubscribeFresh: no position in the channel was presented; messages
	// start with the live ones.
	SubscribeFresh SubscribeStatus = "fresh"

	// SubscribeResumed: the messages after the presented position were
	// replayed, each once, before the KindSubscribed message.
	SubscribeResumed SubscribeStatus = "resumed"

	// SubscribeFailed: the server could not resume from the presented
	// position (its history no longer reaches back, or the stream was
	// lost): messages may be missing, and the program should catch up by
	// other means.
	SubscribeFailed SubscribeStatus = "failed"
)

// PresenceEntry is one socket present in a channel, as realtime.PresenceEntry.
type PresenceEntry struct {
	Socket string `json:"socket"` // the socket's id
	User   string `json:"user,omitempty"`
	Info   string `json:"info,omitempty"`
}

// ErrNoChannels is returned by Subscribe, Unsubscribe, Publish and
// Presence when the connection's server does not speak realtime.v2
// (it selected realtime.v1, or no subprotocol at all): it has no
// channels to offer this client.
var ErrNoChannels = errors.New("client: the server does not speak realtime.v2, which channels need")

// ErrConnectionLost is returned by Presence when the connection that
// carried the request ended before the answer came. The request may be
// made again on the next connection.
var ErrConnectionLost = errors.New("client: the connection ended before the answer came")

// RequestError is the server's refusal of a request, an "error"
// message: Presence returns one when the server could not answer (the
// Socket is not in the channel, the broker could not be reached).
type RequestError struct {
	// Text is the server's explanation.
	Text string
}

// Error quotes the server.
func (e *RequestError) Error() string { return "client: the server refused: " + e.Text }

// FrameError reports a server message that breaks the realtime.v2
// protocol: an unknown kind, a missing or malformed channel name, an
// unknown subscription status, presence data that is not the JSON it
// must be. The Socket stops with it, since reconnecting would meet the
// same server.
type FrameError struct {
	// Frame is the start of the message, quoted.
	Frame string

	// Reason says what is wrong.
	Reason string
}

// Error names the reason and quotes the frame.
func (e *FrameError) Error() string {
	return "client: malformed realtime.v2 message (" + e.Reason + "): " + e.Frame
}

func frameError(frame, reason string) error {
	return &FrameError{Frame: quote.Prefix(frame), Reason: reason}
}

// validChannel reports whether name can be a channel's: 1 to 200 bytes
// of UTF-8 without spaces or control characters.
func validChannel(name string) bool {
	if name == "" || len(name) > maxChannelName || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r == ' ' || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// checkChannel checks the name of a channel a client asks for: a valid
// name, not one of the names starting with "$" that the library keeps
// for itself.
func checkChannel(name string) error {
	if !validChannel(name) {
		return errors.New("client: invalid channel name " + quote.Prefix(name) + ": 1 to 200 bytes of UTF-8 without spaces or control characters")
	}
	if strings.HasPrefix(name, "$") {
		return errors.New("client: channel names starting with $ are reserved: " + quote.Prefix(name))
	}
	return nil
}

// parseFrame parses a realtime.v2 server message after its id: "HEADER"
// or "HEADER\nDATA", HEADER being "KIND" or "KIND CHANNEL". The entries
// of a presence list come apart, never nil.
func parseFrame(id, frame string) (Message, []PresenceEntry, error) {
	header, data, _ := strings.Cut(frame, "\n")
	kindText, channel, hasChannel := strings.Cut(header, " ")
	if !validKind(kindText) {
		return Message{}, nil, frameError(frame, "malformed kind")
	}
	k := Kind(slices.Index(kindNames[:], kindText))
	if int(k) >= len(kindNames) {
		switch {
		case hasChannel && !validChannel(channel):
			return Message{}, nil, frameError(frame, "invalid channel name")
		case kindText != heartbeatKind:
			return Message{Kind: kindUnknown}, nil, nil
		}
		if _, ok := parseHeartbeat(data); !ok {
			return Message{}, nil, frameError(frame, "heartbeat interval is not a number of milliseconds")
		}
		if hasChannel || id != "" {
			return Message{}, nil, frameError(frame, "heartbeat with a channel or an id")
		}
		return Message{Kind: kindHeartbeat, Data: data}, nil, nil
	}
	m := Message{ID: id, Kind: k, Channel: channel, Data: data}
	switch {
	case hasChannel && !validChannel(channel):
		return Message{}, nil, frameError(frame, "invalid channel name")
	case !hasChannel && k != KindMessage && k != KindError:
		return Message{}, nil, frameError(frame, kindText+" without a channel")
	}
	switch k {
	case KindSubscribed:
		m.Status = SubscribeStatus(data)
		if m.Status != SubscribeFresh && m.Status != SubscribeResumed && m.Status != SubscribeFailed {
			return Message{}, nil, frameError(frame, "unknown subscription status")
		}
	case KindJoin, KindLeave:
		// Into a variable of its own, so that m does not escape.
		e := new(PresenceEntry)
		if !strings.HasPrefix(data, "{") || json.Unmarshal([]byte(data), e) != nil {
			return Message{}, nil, frameError(frame, "presence entry is not a JSON object")
		}
		m.Entry = *e
	case KindPresence:
		list := []PresenceEntry{}
		if !strings.HasPrefix(data, "[") || json.Unmarshal([]byte(data), &list) != nil {
			return Message{}, nil, frameError(frame, "presence list is not a JSON array")
		}
		return m, list, nil
	}
	return m, nil, nil
}

// validKind reports whether word can be the kind of a message: 1 to 64
// ASCII letters, digits, '.', '-' or '_'.
func validKind(word string) bool {
	if word == "" || len(word) > 64 {
		return false
	}
	for i := 0; i < len(word); i++ {
		c := word[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// parseHeartbeat parses the data of a heartbeat message: the server's
// heartbeat interval in milliseconds, 1 to 9 decimal digits.
func parseHeartbeat(data string) (time.Duration, bool) {
	if data == "" || len(data) > 9 {
		return 0, false
	}
	var ms int64
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		ms = ms*10 + int64(c-'0')
	}
	return time.Duration(ms) * time.Millisecond, ms > 0
}

// requestKind is what a client request asks for.
type requestKind uint8

const (
	reqSend requestKind = iota
	reqSubscribe
	reqUnsubscribe
	reqPublish
	reqPresence
)

// request is one client request on its way.
type request struct {
	kind    requestKind
	channel string
	text    string

	// The state of a request sent again on a new connection.
	applied bool                // the Socket's subscriptions were updated
	waiter  chan presenceAnswer // reqPresence: where the answer goes
	unsure  unsure              // a POST of it whose answer never came
}

// wire returns the request's message under p.
func (r *request) wire(p protocol) string {
	switch r.kind {
	case reqSubscribe:
		return "subscribe " + r.channel
	case reqUnsubscribe:
		return "unsubscribe " + r.channel
	case reqPublish:
		return "publish " + r.channel + "\n" + r.text
	case reqPresence:
		return "presence " + r.channel
	}
	if p == protoV2 {
		return "message\n" + r.text
	}
	return r.text
}

type presenceAnswer struct {
	entries []PresenceEntry
	err     error
}

// Subscribe asks the server to put the Socket in channel, and remembers
// the channel: after every reconnection the Socket asks again, before
// any other message it sends, and the server resumes the channel from
// the last event id. Subscribe returns once the request is sent (see
// Send), without waiting for the answer, which comes through Next in
// order with the messages: a KindSubscribed message (after the replay
// of the messages missed, if any), or a KindUnsubscribed message with
// the server's reason if it refused. Waiting here would stall a program
// that reads messages on the goroutine calling Subscribe.
//
// Subscribe returns an error for an invalid or reserved channel name,
// ErrNoChannels when the server speaks realtime.v1, and otherwise the
// errors of Send. After a *SendError the channel stays remembered and
// is asked for on the next connection; call Unsubscribe to forget it.
func (s *Socket) Subscribe(ctx context.Context, channel string) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	return s.do(ctx, &request{kind: reqSubscribe, channel: channel})
}

// Unsubscribe forgets channel and asks the server to take the Socket out
// of it, which the server confirms with a KindUnsubscribed message. It
// returns as Subscribe does.
func (s *Socket) Unsubscribe(ctx context.Context, channel string) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	return s.do(ctx, &request{kind: reqUnsubscribe, channel: channel})
}

// Publish asks the server to publish text in channel; the server's
// OnPublish hook decides. The Socket need not be in the channel. It
// returns as Send does: nil means the server has the request, not that
// the message was published (a refusal comes back as a KindError or
// KindUnsubscribed message, as the server chooses).
func (s *Socket) Publish(ctx context.Context, channel, text string) error {
	if err := checkChannel(channel); err != nil {
		return err
	}
	if !utf8.ValidString(text) {
		return errInvalidUTF8
	}
	return s.do(ctx, &request{kind: reqPublish, channel: channel, text: text})
}

// Presence asks the server who is in channel, on every node, and waits
// for the answer. The answer comes on the connection in order with the
// messages, so it waits also for the messages before it to be taken by
// Next: a program that calls Presence and Next on the same goroutine
// must have taken them first. Presence returns a *RequestError when the
// server refused (the Socket is not in the channel, the broker could not
// be reached), ErrConnectionLost when the connection ended before the
// answer, ErrNoChannels under realtime.v1, and otherwise the errors of
// Send or ctx's error. The answer to a call that gave up is dropped.
func (s *Socket) Presence(ctx context.Context, channel string) ([]PresenceEntry, error) {
	if err := checkChannel(channel); err != nil {
		return nil, err
	}
	r := &request{kind: reqPresence, channel: channel, waiter: make(chan presenceAnswer, 1)}
	if err := s.do(ctx, r); err != nil {
		return nil, err
	}
	select {
	case a := <-r.waiter:
		return a.entries, a.err
	case <-ctx.Done():
		return nil, s.interrupted(ctx)
	}
}

// Subscriptions returns the channels the Socket asks for after each
// reconnection, in the order they were first subscribed to.
func (s *Socket) Subscriptions() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.subs)
}

// apply updates the Socket's subscriptions for r, once.
func (s *Socket) apply(r *request) {
	if r.applied {
		return
	}
	r.applied = true
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.Index(s.subs, r.channel)
	switch {
	case r.kind == reqSubscribe && i < 0:
		s.subs = append(s.subs, r.channel)
	case r.kind == reqUnsubscribe && i >= 0:
		s.subs = slices.Delete(s.subs, i, i+1)
	}
}

// forget drops channel from the subscriptions after the server said the
// Socket is not in it.
func (s *Socket) forget(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.subs, channel); i >= 0 {
		s.subs = slices.Delete(s.subs, i, i+1)
	}
}

// prime asks for the subscriptions on l, a new realtime.v2 connection,
// before anything else is sent on it. The caller holds sendSem. It
// reports whether l is still usable; when not, l is dropped, or ctx
// ended.
func (s *Socket) prime(ctx context.Context, l *link) bool {
	l.primed = true
	for _, ch := range s.Subscriptions() {
		again, err := s.sendOn(ctx, l, "subscribe "+ch, nil)
		if again {
			return false
		}
		var se *SendError
		if err != nil && !(errors.As(err, &se) && refusedOnly(se.StatusCode)) {
			if ctx.Err() == nil {
				l.drop(err)
			}
			return false
		}
	}
	return true
}

// primeSoon primes l when no request does it first, so that a Socket
// with nothing to send gets its subscriptions back after reconnecting.
// It runs on a goroutine of its own, counted in s.sending.
func (s *Socket) primeSoon(l *link) {
	defer s.sending.Done()
	select {
	case s.sendSem <- struct{}{}:
	case <-l.gone:
		return
	case <-s.ctx.Done():
		return
	}
	defer func() { <-s.sendSem }()
	select {
	case <-l.gone:
		return
	default:
	}
	if !l.primed {
		s.prime(s.ctx, l)
	}
}

// refusedOnly reports whether a POST answered with status refused that
// message only, the connection going on.
func refusedOnly(status int) bool { return status == 400 || status == 413 }

// presenceWaiter is a presence request sent on a link, waiting for its
// answer.
type presenceWaiter struct {
	channel string
	answer  chan presenceAnswer
}

// presenceRefusal starts the text of the "error" message with which the
// server refuses a presence request.
const presenceRefusal = "presence "

// addWaiter registers w for the answer to a presence request about
// channel on l. It reports false when l has ended.
func (l *link) addWaiter(channel string, w chan presenceAnswer) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		return false
	}
	l.waiters = append(l.waiters, presenceWaiter{channel, w})
	return true
}

// removeWaiter takes back w, whose request was not sent.
func (l *link) removeWaiter(w chan presenceAnswer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waiters = slices.DeleteFunc(l.waiters, func(pw presenceWaiter) bool { return pw.answer == w })
}

// answer hands m, a presence list or an error, to the oldest presence
// request if it answers that one: the server answers requests in order,
// each presence request with a presence list of its channel or with an
// error about it. It reports false when m answers none; m then goes to
// Next.
func (l *link) answer(m Message, list []PresenceEntry) bool {
	l.mu.Lock()
	if len(l.waiters) == 0 {
		l.mu.Unlock()
		return false
	}
	w := l.waiters[0]
	var a presenceAnswer
	switch {
	case m.Kind == KindPresence && m.Channel == w.channel:
		a.entries = list
	case m.Kind == KindError && strings.HasPrefix(m.Data, presenceRefusal):
		a.err = &RequestError{Text: m.Data}
	default:
		l.mu.Unlock()
		return false
	}
	l.waiters = l.waiters[1:]
	l.mu.Unlock()
	w.answer <- a
	return true
}

// end fails the presence requests still waiting on l.
func (l *link) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended = true
	for _, w := range l.waiters {
		w.answer <- presenceAnswer{err: ErrConnectionLost}
	}
	l.waiters = nil
}

// eventStreamProtocol tells which protocol an event stream's server
// speaks: realtime.v2 says so in a header field; a server of realtime.v1
// ignores the query parameter that asked for it.
func eventStreamProtocol(resp *http.Response) protocol {
	if resp.Header.Get(protocolHeader) == socketSubprotocolV2 {
		return protoV2
	}
	return protoV1
}

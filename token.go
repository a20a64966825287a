package realtime

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"
)

// tokenKey signs the session tokens of one registry. A token is a random
// nonce followed by a truncated HMAC of it: the random part makes it
// unguessable, and the MAC lets the node tell a token it issued to a
// socket that has since ended (410 Gone, "reconnect") from one it never
// issued (404), without remembering ended sockets.
type tokenKey [32]byte

const (
	nonceSize = 16
	macSize   = 16
)

func newTokenKey() *tokenKey {
	k := new(tokenKey)
	rand.Read(k[:])
	return k
}

func (k *tokenKey) mac(nonce []byte) []byte {
	m := hmac.New(sha256.New, k[:])
	m.Write(nonce)
	return m.Sum(nil)[:macSize]
}

// mint returns a fresh token.
func (k *tokenKey) mint() string {
	var b [nonceSize + macSize]byte
	rand.Read(b[:nonceSize])
	copy(b[nonceSize:], k.mac(b[:nonceSize]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// issued reports whether tok is a token this key minted.
func (k *tokenKey) issued(tok string) bool {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) != nonceSize+macSize {
		return false
	}
	return hmac.Equal(b[nonceSize:], k.mac(b[:nonceSize]))
}

// registry names the live sockets of a node: by id and by EventSource
// session token. A hub has one, shared by its handlers, so that a POST
// or a Hub.SendTo forwarded by another node finds the socket; a handler
// without a hub has its own. Ids and tokens start with the node's name
// and a dot ("NODE.RANDOM"), so any node can tell whose they are.
type registry struct {
	prefix string // "NODE.", or "" for a handler without a hub
	key    *tokenKey

	mu     sync.Mutex
	tokens map[string]*Socket
	ids    map[string]*Socket
	ended  endedSessions
}

// endedSessions remembers, for a while, the highest Realtime-Seq
// delivered by each EventSource session that has ended, so that a
// retried POST whose first try was delivered (its answer lost with the
// connection) is still answered 204, not 410, which would make the
// client send the message again. Bounded in time and in count.
type endedSessions struct {
	ttl  time.Duration // endedTTL; a test's own
	max  int           // maxEnded; a test's own
	now  func() time.Time
	seqs map[string]endedSession
	fifo []endedToken // in the order they ended; fifo[head:] are live
	head int
}

type endedSession struct {
	seq uint64
	at  time.Time
}

type endedToken struct {
	tok string
	at  time.Time
}

const (
	endedTTL = 2 * time.Minute
	maxEnded = 100_000
)

// add records the highest seq of a session that ended now.
func (e *endedSessions) add(tok string, seq uint64) {
	if e.seqs == nil {
		e.seqs = make(map[string]endedSession)
	}
	at := e.now()
	e.prune(at)
	for len(e.seqs) >= e.max {
		e.drop()
	}
	e.seqs[tok] = endedSession{seq, at}
	e.fifo = append(e.fifo, endedToken{tok, at})
}

// seq returns the highest seq recorded for tok, 0 if none.
func (e *endedSessions) seq(tok string) uint64 {
	at := e.now()
	e.prune(at)
	return e.seqs[tok].seq
}

// prune forgets the sessions that ended more than ttl before now.
func (e *endedSessions) prune(now time.Time) {
	for e.head < len(e.fifo) && now.Sub(e.fifo[e.head].at) >= e.ttl {
		e.drop()
	}
}

// drop forgets the oldest session.
func (e *endedSessions) drop() {
	t := e.fifo[e.head]
	e.fifo[e.head] = endedToken{}
	e.head++
	if cur, ok := e.seqs[t.tok]; ok && cur.at.Equal(t.at) {
		delete(e.seqs, t.tok)
	}
	if e.head == len(e.fifo) {
		e.fifo, e.head = e.fifo[:0], 0
	} else if e.head > len(e.fifo)/2 && e.head >= 1024 {
		// Keep the array from growing with the sessions that passed.
		n := copy(e.fifo, e.fifo[e.head:])
		clear(e.fifo[n:])
		e.fifo, e.head = e.fifo[:n], 0
	}
}

func newRegistry(node string) *registry {
	r := &registry{key: newTokenKey(), tokens: make(map[string]*Socket), ids: make(map[string]*Socket)}
	r.ended = endedSessions{ttl: endedTTL, max: maxEnded, now: time.Now}
	if node != "" {
		r.prefix = node + "."
	}
	return r
}

// newID returns a fresh socket id.
func (r *registry) newID() string {
	var b [8]byte
	rand.Read(b[:])
	return r.prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// add registers a socket that has opened, and mints its token when it
// is an EventSource one.
func (r *registry) add(s *Socket) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids[s.id] = s
	if s.transport == TransportEventSource {
		s.token = r.prefix + r.key.mint()
		r.tokens[s.token] = s
	}
}

// forget unregisters an ended socket.
func (r *registry) forget(s *Socket) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids[s.id] == s {
		delete(r.ids, s.id)
	}
	if s.token != "" && r.tokens[s.token] == s {
		delete(r.tokens, s.token)
		// end marked s ended before: its seq moves no more.
		if s.seq > 0 {
			r.ended.add(s.token, s.seq)
		}
	}
}

// endedPost returns the status for a POST numbered seq to the ended
// session tok: 204 for a retry of a message that was delivered, else
// 410, as the message was not, and the client sends it again on its
// next connection.
func (r *registry) endedPost(tok string, seq uint64) (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq != 0 && seq <= r.ended.seq(tok) {
		return http.StatusNoContent, ""
	}
	return http.StatusGone, msgEnded
}

func (r *registry) byToken(tok string) *Socket {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tokens[tok]
}

func (r *registry) byID(id string) *Socket {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[id]
}

// issued reports whether tok is a token of this registry's key.
func (r *registry) issued(tok string) bool {
	rest, ok := strings.CutPrefix(tok, r.prefix)
	return ok && r.key.issued(rest)
}

// nodeOf returns the node named by a socket id or token: what comes
// before its last dot.
func nodeOf(name string) (string, bool) {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 {
		return "", false
	}
	return name[:i], true
}

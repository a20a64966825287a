package realtime

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
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
}

func newRegistry(node string) *registry {
	r := &registry{key: newTokenKey(), tokens: make(map[string]*Socket), ids: make(map[string]*Socket)}
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
	}
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

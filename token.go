package realtime

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// tokenKey signs the session tokens of one Handler. A token is a random
// nonce followed by a truncated HMAC of it: the random part makes it
// unguessable, and the MAC lets the handler tell a token it issued to a
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

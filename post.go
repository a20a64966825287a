package realtime

import (
	"errors"
	"io"
	"net/http"
	"unicode/utf8"
)

// servePost delivers a message from the client of an EventSource socket.
// The token, which only that client has (it came on its own stream), is
// what authorizes the POST; cookies play no part, so another site's page
// cannot forge one. A token of another node of the hub's broker is
// forwarded to that node, whose answer is given: no sticky load
// balancing is needed.
func (h *handler) servePost(w http.ResponseWriter, r *http.Request) {
	tok := r.Header.Get(TokenHeader)
	if tok == "" {
		http.Error(w, "realtime: missing "+TokenHeader+" header", http.StatusBadRequest)
		return
	}
	s := h.reg.byToken(tok)
	var node string
	if s == nil {
		hub := h.cfg.hub
		n, ok := nodeOf(tok)
		switch {
		case hub != nil && ok && n != hub.node:
			node = n
		case h.reg.issued(tok):
			http.Error(w, "realtime: the socket has ended; reconnect", http.StatusGone)
			return
		default:
			http.Error(w, "realtime: unknown token", http.StatusNotFound)
			return
		}
	}
	var rd io.Reader = r.Body
	if h.cfg.maxMessage > 0 {
		rd = http.MaxBytesReader(w, r.Body, h.cfg.maxMessage)
	}
	body, err := io.ReadAll(rd)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "realtime: message too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "realtime: reading the message: "+err.Error(), http.StatusBadRequest)
		return
	}
	if !utf8.Valid(body) {
		http.Error(w, "realtime: message is not valid UTF-8", http.StatusBadRequest)
		return
	}
	if s == nil {
		h.cfg.hub.forwardPost(w, r, node, tok, string(body))
		return
	}
	if status, msg := s.receivePost(string(body)); status != http.StatusNoContent {
		http.Error(w, msg, status)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// receivePost delivers the body of a POST, and returns the status to
// answer with.
func (s *Socket) receivePost(text string) (int, string) {
	// One message at a time per socket, as on WebSocket, and never after
	// the socket has ended.
	s.msgMu.Lock()
	defer s.msgMu.Unlock()
	select {
	case <-s.done:
		return http.StatusGone, "realtime: the socket has ended; reconnect"
	default:
	}
	s.receive(text)
	return http.StatusNoContent, ""
}

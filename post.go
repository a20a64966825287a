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
	seq, ok := parseSeq(r.Header.Values(SeqHeader))
	if !ok {
		http.Error(w, "realtime: malformed "+SeqHeader+" header", http.StatusBadRequest)
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
			status, msg := h.reg.endedPost(tok, seq)
			answer(w, status, msg)
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
		h.cfg.hub.forwardPost(w, r, node, tok, seq, string(body))
		return
	}
	status, msg := s.receivePost(seq, string(body))
	answer(w, status, msg)
}

// answer answers a POST with status, and msg as the text of an error.
func answer(w http.ResponseWriter, status int, msg string) {
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	http.Error(w, msg, status)
}

// maxSeq is the largest Realtime-Seq, 2^53-1: the largest integer a
// JavaScript number holds exactly.
const maxSeq = 1<<53 - 1

// parseSeq parses the Realtime-Seq header: 0 when absent (a client that
// does not number its POSTs), else 1 to maxSeq in decimal digits. ok is
// false for anything else, a repeated header included.
func parseSeq(vals []string) (seq uint64, ok bool) {
	switch len(vals) {
	case 0:
		return 0, true
	case 1:
	default:
		return 0, false
	}
	v := vals[0]
	if v == "" {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if seq = seq*10 + uint64(c-'0'); seq > maxSeq {
			return 0, false
		}
	}
	return seq, seq >= 1
}

const (
	msgEnded  = "realtime: the socket has ended; reconnect"
	msgGapSeq = "realtime: " + SeqHeader + " skips a message"
)

// receivePost delivers the body of a POST numbered seq (0: not
// numbered), and returns the status to answer with. A numbered POST
// must be the next of its session, or a retry of one delivered, which
// is answered without being delivered again.
func (s *Socket) receivePost(seq uint64, text string) (int, string) {
	// One message at a time per socket, as on WebSocket, and never after
	// the socket has ended.
	s.msgMu.Lock()
	defer s.msgMu.Unlock()
	// The sequence moves under mu, where end marks the socket ended
	// before its registry records the sequence: either this POST sees the
	// end and delivers nothing, or the record has its number.
	s.mu.Lock()
	switch {
	case s.ended:
		s.mu.Unlock()
		return http.StatusGone, msgEnded
	case seq == 0:
	case seq <= s.seq:
		s.mu.Unlock()
		return http.StatusNoContent, ""
	case seq > s.seq+1:
		s.mu.Unlock()
		return http.StatusBadRequest, msgGapSeq
	default:
		s.seq = seq
	}
	s.mu.Unlock()
	s.receive(text)
	return http.StatusNoContent, ""
}

package realtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrNoSocket: Hub.SendTo named a socket that has ended, or never was.
var ErrNoSocket = errors.New("realtime: no such socket")

// The calls between nodes, made with Broker.Call and answered by the
// named node's serveCalls: "post\nTOKEN\nBODY", a POST for one of its
// EventSource sockets, "post-seq\nTOKEN\nSEQ\nBODY", one that carried
// Realtime-Seq: SEQ, and "send\nID\nTEXT", a Hub.SendTo. The answer
// is "STATUS\nTEXT": the HTTP status the POST gets (204 when
// delivered), and the text of an error. A node that does not know
// post-seq answers 400 rather than deliver "SEQ\nBODY".
const (
	callPost    = "post"
	callPostSeq = "post-seq"
	callSend    = "send"
)

// serveCalls answers the calls made to this node until the hub closes.
func (h *Hub) serveCalls() {
	defer h.wg.Done()
	var b backoff
	for {
		err := h.broker.Serve(h.ctx, h.node, h.answer)
		if h.ctx.Err() != nil || errors.Is(err, ErrBrokerClosed) {
			return
		}
		if !b.wait(h.ctx) {
			return
		}
	}
}

// answer answers one call of another node.
func (h *Hub) answer(ctx context.Context, req []byte) []byte {
	op, rest, _ := strings.Cut(string(req), "\n")
	name, text, _ := strings.Cut(rest, "\n")
	var status int
	var msg string
	switch op {
	case callPost, callPostSeq:
		var seq uint64
		if op == callPostSeq {
			var n string
			n, text, _ = strings.Cut(text, "\n")
			var ok bool
			if seq, ok = parseSeq([]string{n}); !ok {
				status, msg = http.StatusBadRequest, "realtime: malformed "+SeqHeader+" header"
				break
			}
		}
		s := h.reg.byToken(name)
		switch {
		case s != nil:
			status, msg = s.receivePost(seq, text)
		case h.reg.issued(name):
			status, msg = h.reg.endedPost(name, seq)
		default:
			status, msg = http.StatusNotFound, "realtime: unknown token"
		}
	case callSend:
		status, msg = h.sendLocal(name, text)
	default:
		status, msg = http.StatusBadRequest, "realtime: unknown call"
	}
	return []byte(strconv.Itoa(status) + "\n" + msg)
}

// sendLocal sends text to a socket of this node.
func (h *Hub) sendLocal(id, text string) (int, string) {
	s := h.reg.byID(id)
	if s == nil {
		return http.StatusGone, ErrNoSocket.Error()
	}
	if err := s.Send(text); err != nil {
		if errors.Is(err, errInvalidUTF8) {
			return http.StatusBadRequest, err.Error()
		}
		return http.StatusGone, err.Error()
	}
	return http.StatusNoContent, ""
}

// call makes a call to node and returns the status and text of its
// answer.
func (h *Hub) call(ctx context.Context, node, op, name, text string) (int, string, error) {
	ans, err := h.broker.Call(ctx, node, []byte(op+"\n"+name+"\n"+text))
	if err != nil {
		return 0, "", err
	}
	code, msg, _ := strings.Cut(string(ans), "\n")
	status, err := strconv.Atoi(code)
	if err != nil || status < 100 || status > 599 {
		return 0, "", fmt.Errorf("realtime: node %s answered a malformed call", node)
	}
	return status, msg, nil
}

// SendTo sends text to the socket with id socketID (Socket.ID), on
// whichever node it is, as Socket.Send does: a message to that socket
// only, not numbered. A socket of another node is reached through the
// broker (Broker.Call), so ctx bounds that call. It fails with an error
// matching ErrNoSocket when the socket has ended or its node is gone (or
// ErrNoNode too, then), with ErrBrokerUnavailable when the broker cannot
// be reached, and with websocket.ErrInvalidUTF8 for text that is not
// valid UTF-8.
func (h *Hub) SendTo(ctx context.Context, socketID, text string) error {
	if h.isDone.Load() {
		return ErrHubClosed
	}
	node, ok := nodeOf(socketID)
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoSocket, quotePrefix(socketID))
	}
	if node == h.node {
		switch status, _ := h.sendLocal(socketID, text); status {
		case http.StatusNoContent:
			return nil
		case http.StatusBadRequest:
			return errInvalidUTF8
		}
		return fmt.Errorf("%w: %s", ErrNoSocket, quotePrefix(socketID))
	}
	if !utf8.ValidString(text) {
		return errInvalidUTF8
	}
	status, msg, err := h.call(ctx, node, callSend, socketID, text)
	switch {
	case errors.Is(err, ErrNoNode):
		return fmt.Errorf("%w: %w", ErrNoSocket, err)
	case err != nil:
		return err
	case status == http.StatusNoContent:
		return nil
	case status == http.StatusBadRequest:
		return errInvalidUTF8
	}
	return fmt.Errorf("%w: %s: %s", ErrNoSocket, quotePrefix(socketID), quotePrefix(msg))
}

// forwardPost delivers the POST of a token of another node to that node,
// and answers what it answered.
func (h *Hub) forwardPost(w http.ResponseWriter, r *http.Request, node, tok string, seq uint64, body string) {
	op := callPost
	if seq != 0 {
		op, body = callPostSeq, strconv.FormatUint(seq, 10)+"\n"+body
	}
	status, msg, err := h.call(r.Context(), node, op, tok, body)
	switch {
	case errors.Is(err, ErrNoNode):
		http.Error(w, "realtime: the socket's node has ended; reconnect", http.StatusGone)
	case errors.Is(err, ErrBrokerUnavailable):
		w.Header().Set("Retry-After", "1")
		http.Error(w, "realtime: the socket's node cannot be reached", http.StatusServiceUnavailable)
	case err != nil:
		http.Error(w, "realtime: forwarding to the socket's node: "+quotePrefix(err.Error()), http.StatusBadGateway)
	default:
		answer(w, status, msg)
	}
}

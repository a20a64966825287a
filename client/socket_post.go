package client

import (
	"context"
	"net/http"
	"strconv"
	"strings"
)

// post sends text as a POST with the session token, and seq as
// Realtime-Seq unless 0, and returns the answer's status and the start
// of its body. The caller holds sendSem. The POST goes through the
// Socket's HTTP client, on a connection it keeps between messages (the
// stream's own, over HTTP/2), and follows redirects as the stream does.
func (s *Socket) post(ctx context.Context, token string, seq uint64, text string) (status int, body string, err error) {
	u := s.httpURL
	h := s.header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set(tokenHeader, token)
	if seq != 0 {
		h.Set(seqHeader, strconv.FormatUint(seq, 10))
	}
	withUserinfo(h, u)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(text))
	if err != nil {
		return 0, "", err
	}
	req.Header = h
	resp, cancel, err := s.dialer().roundTrip(s.client(), req, ctx, "POST")
	if err != nil {
		return 0, "", err
	}
	defer cancel()
	return resp.StatusCode, string(readError(resp)), nil
}

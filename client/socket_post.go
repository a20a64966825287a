package client

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/realtime-go/realtime/internal/ctxio"
)

// postConn is an HTTP/1.1 connection for a Socket's POSTs, kept between
// messages: to the origin (through a tunnel, if a proxy is used), or to
// the proxy itself in forward mode.
type postConn struct {
	nc  net.Conn
	cr  *connReader
	br  *bufio.Reader
	fwd http.Header // forward mode: the fields the proxy wants
}

func (pc *postConn) close() { pc.nc.Close() }

// alive reports whether a kept connection can carry another request: the
// server has not closed it, and has sent nothing unasked. The read needs
// a deadline in the future, or it would not look at the connection.
func (pc *postConn) alive() bool {
	if pc.br.Buffered() > 0 {
		return false
	}
	var b [1]byte
	pc.nc.SetReadDeadline(time.Now().Add(time.Millisecond))
	n, err := pc.nc.Read(b[:])
	pc.nc.SetReadDeadline(time.Time{})
	return n == 0 && errors.Is(err, os.ErrDeadlineExceeded)
}

// post sends text as a POST with the session token, and seq as
// Realtime-Seq unless 0, and returns the answer's status and the start
// of its body. The caller holds sendSem.
func (s *Socket) post(ctx context.Context, token string, seq uint64, text string) (status int, body string, err error) {
	pc := s.idle
	s.idle = nil
	if pc != nil && !pc.alive() {
		pc.close()
		pc = nil
	}
	u := s.httpURL
	if pc == nil {
		d := s.dialer()
		actx, cancel := d.attemptContext(ctx)
		nc, fwd, err := d.connect(actx, u, u.Scheme == "https")
		cancel()
		if err != nil {
			return 0, "", err
		}
		cr := &connReader{nc: nc}
		pc = &postConn{nc: nc, cr: cr, br: bufio.NewReader(cr), fwd: fwd}
	}

	h := s.header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set(tokenHeader, token)
	if seq != 0 {
		h.Set(seqHeader, strconv.FormatUint(seq, 10))
	}
	if u.User != nil && h.Get("Authorization") == "" {
		pass, _ := u.User.Password()
		h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass)))
	}
	s.d.addCookies(h, u)
	for k, v := range pc.fwd {
		h[k] = v
	}
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Host:          u.Host,
		ContentLength: int64(len(text)),
	}
	if len(text) > 0 {
		req.Body = io.NopCloser(strings.NewReader(text))
	}

	fail := func(err error) (int, string, error) {
		pc.close()
		return 0, "", fmt.Errorf("POST to %s: %w", u.Redacted(), withCtxCause(ctx, err))
	}
	stop := ctxio.Interrupt(ctx, pc.nc)
	if err := writeRequest(pc.nc, req, pc.fwd != nil); err != nil {
		stop()
		return fail(err)
	}
	pc.cr.limit = maxResponseHeader
	resp, err := http.ReadResponse(pc.br, req)
	if err != nil {
		stop()
		if pc.cr.limit == 0 {
			err = fmt.Errorf("response header exceeds %d bytes", maxResponseHeader)
		} else {
			err = malformedResponse(ctx, err)
		}
		return fail(err)
	}
	pc.cr.limit = -1 // the body has its own bound
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody+1))
	// Close would drain a body that is longer; such a connection is not
	// kept, so leave it.
	keep := rerr == nil && len(b) <= maxErrorBody && !resp.Close
	if keep {
		resp.Body.Close()
	}
	if !stop() {
		keep = false // ctx ended: the deadline it set is in the way
	}
	if s.d.Jar != nil {
		if cs := resp.Cookies(); len(cs) > 0 {
			s.d.Jar.SetCookies(u, cs)
		}
	}
	if keep {
		s.idle = pc
	} else {
		pc.close()
	}
	return resp.StatusCode, string(b[:min(len(b), maxErrorBody)]), nil
}

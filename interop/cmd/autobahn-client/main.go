// Command autobahn-client is the testee for the Autobahn|Testsuite
// fuzzingserver: it asks the server for the number of cases, runs each
// case by echoing every message until the server closes, then asks the
// server to write its reports.
//
//	autobahn-client -url ws://127.0.0.1:9001 -agent realtime [-deflate]
//
// With -deflate the client offers permessage-deflate (RFC 7692) in every
// case, as "permessage-deflate; client_max_window_bits": the server may
// then limit our window and ask for no context takeover, as cases 13.*
// do, and every message is compressed however small.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/realtime-go/realtime/extensions"
	"github.com/realtime-go/realtime/extensions/deflate"
	"github.com/realtime-go/realtime/websocket"
)

func main() {
	base := flag.String("url", "ws://127.0.0.1:9001", "fuzzingserver URL")
	agent := flag.String("agent", "realtime", "agent name in the reports")
	caseTimeout := flag.Duration("case-timeout", 2*time.Minute, "time limit for one case")
	verbose := flag.Bool("v", false, "log how each case ended")
	useDeflate := flag.Bool("deflate", false, "offer permessage-deflate (for cases 12.* and 13.*)")
	flag.Parse()
	if *useDeflate {
		clientOpts.Extensions = []extensions.Extension{deflate.New(&deflate.Options{Threshold: -1})}
	}

	log.SetFlags(log.Lmicroseconds)
	log.SetPrefix("autobahn-client: ")

	if err := run(*base, *agent, *caseTimeout, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "autobahn-client:", err)
		os.Exit(1)
	}
}

func run(base, agent string, caseTimeout time.Duration, verbose bool) error {
	base = strings.TrimRight(base, "/")
	q := url.QueryEscape(agent)

	count, err := caseCount(base + "/getCaseCount")
	if err != nil {
		return fmt.Errorf("getCaseCount: %w", err)
	}
	log.Printf("%d cases, agent %q", count, agent)

	failed := 0
	for i := 1; i <= count; i++ {
		u := fmt.Sprintf("%s/runCase?case=%d&agent=%s", base, i, q)
		n, err := runCase(u, caseTimeout)
		if err != nil && !isNormalEnd(err) {
			var setup *setupError
			if errors.As(err, &setup) {
				failed++
			}
			log.Printf("case %d: %d messages echoed, ended: %v", i, n, err)
		} else if verbose {
			log.Printf("case %d: %d messages echoed, ended: %v", i, n, err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := dial(ctx, base+"/updateReports?agent="+q)
	if err != nil {
		return fmt.Errorf("updateReports: %w", err)
	}
	// The server writes the reports and then closes; wait for it.
	drain(ctx, c)
	c.CloseNow()
	if failed > 0 {
		log.Printf("%d of %d cases could not be started", failed, count)
	}
	log.Printf("done")
	return nil
}

// clientOpts configures every connection.
var clientOpts = &websocket.ClientOptions{}

type setupError struct{ err error }

func (e *setupError) Error() string { return "connect: " + e.err.Error() }
func (e *setupError) Unwrap() error { return e.err }

// dial connects to the server of rawURL and performs the opening
// handshake. ctx bounds both.
func dial(ctx context.Context, rawURL string) (*websocket.Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "ws" {
		return nil, fmt.Errorf("unsupported scheme %q (only ws)", u.Scheme)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	c, _, err := websocket.NewClient(ctx, nc, u, clientOpts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func caseCount(u string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := dial(ctx, u)
	if err != nil {
		return 0, err
	}
	defer c.CloseNow()
	typ, p, err := c.Read(ctx)
	if err != nil {
		return 0, err
	}
	if typ != websocket.MessageText {
		return 0, fmt.Errorf("case count sent as %v message", typ)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(p)))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad case count %q", p)
	}
	drain(ctx, c)
	return n, nil
}

// runCase echoes every message of one case until the connection ends.
func runCase(u string, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := dial(ctx, u)
	if err != nil {
		return 0, &setupError{err}
	}
	defer c.CloseNow()
	for n := 0; ; n++ {
		typ, p, err := c.Read(ctx)
		if err != nil {
			return n, err
		}
		if err := c.Write(ctx, typ, p); err != nil {
			return n, err
		}
	}
}

// drain reads until the server closes the connection.
func drain(ctx context.Context, c *websocket.Conn) {
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
	}
}

// isNormalEnd reports a peer's clean close (1000 or 1001).
func isNormalEnd(err error) bool {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return true
	}
	return false
}

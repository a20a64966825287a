package brokertest

import (
	"io"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

// lb is a TCP load balancer without stickiness: each connection goes
// to the next backend that accepts it.
type lb struct {
	ln net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex
	backends []string
	next     int
	conns    map[net.Conn]struct{}
	closed   bool
}

func newLB(t *testing.T, backends []string) *lb {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lb{ln: ln, backends: backends, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *lb) url() string { return "http://" + p.ln.Addr().String() + "/rt" }

func (p *lb) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// track records c to be closed by close; false if closed already.
func (p *lb) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *lb) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *lb) pick() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var order []string
	for i := range p.backends {
		order = append(order, p.backends[(p.next+i)%len(p.backends)])
	}
	p.next++
	return order
}

// remove takes addr out of the rotation.
func (p *lb) remove(addr string) {
	p.mu.Lock()
	p.backends = slices.DeleteFunc(p.backends, func(a string) bool { return a == addr })
	p.mu.Unlock()
}

func (p *lb) serve(c net.Conn) {
	defer p.wg.Done()
	defer p.untrack(c)
	var up net.Conn
	for _, addr := range p.pick() {
		var err error
		if up, err = net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
			break
		}
	}
	if up == nil || !p.track(up) {
		return
	}
	defer p.untrack(up)
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
}

func (p *lb) close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
)

// Direct is a proxy function that never selects a proxy, for a
// client.Dialer that must ignore the environment.
func Direct(*http.Request) (*url.URL, error) { return nil, nil }

// Config is a proxy configuration in the shape of the conventional
// environment variables. The zero Config selects no proxy.
//
// Requests for ws:// and http:// URLs use HTTPProxy; wss:// and https://
// use HTTPSProxy; either falls back to AllProxy when its own is empty. A
// value may omit the scheme ("proxy:3128" means http://proxy:3128) and
// may carry credentials (http://user:pass@proxy:3128).
//
// NoProxy is a list, separated by commas or spaces, of destinations to
// reach directly:
//
//   - "*" matches every destination;
//   - an IP address ("10.1.2.3", "::1") matches that address, and a CIDR
//     prefix ("10.0.0.0/8", "fd00::/8") every address in it; they match
//     only destinations written as IP addresses, as names are not
//     resolved to decide;
//   - a domain name ("example.com") matches that name and its
//     subdomains; with a leading "." or "*." (".example.com") it matches
//     only the subdomains;
//   - any of these but a prefix may end with ":port" ("example.com:8080",
//     "[::1]:80") to match only that port, where ws:// and http:// mean
//     80 and wss:// and https:// mean 443 when the URL names none.
//
// Names are compared without case and without a trailing dot.
//
// Unlike net/http, which never proxies requests for localhost and
// loopback addresses, Config treats them as any other destination: list
// them in NoProxy to reach them directly.
type Config struct {
	HTTPProxy  string
	HTTPSProxy string
	AllProxy   string
	NoProxy    string

	// CGI, when set, makes a request that would use HTTPProxy fail, as
	// net/http does: in a CGI program the HTTP_PROXY variable can come
	// from a client's "Proxy:" request header (httpoxy).
	CGI bool
}

// ConfigFromEnvironment reads HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and
// NO_PROXY, or their lowercase forms where the uppercase one is unset or
// empty. CGI is set when REQUEST_METHOD is.
func ConfigFromEnvironment() *Config {
	return &Config{
		HTTPProxy:  getEnvAny("HTTP_PROXY", "http_proxy"),
		HTTPSProxy: getEnvAny("HTTPS_PROXY", "https_proxy"),
		AllProxy:   getEnvAny("ALL_PROXY", "all_proxy"),
		NoProxy:    getEnvAny("NO_PROXY", "no_proxy"),
		CGI:        os.Getenv("REQUEST_METHOD") != "",
	}
}

func getEnvAny(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

// FromEnvironment selects the proxy for req as ConfigFromEnvironment
// says. It reads the variables at every call, so a change takes effect at
// the next dial; the parsed form is cached while they stay the same. It
// is the default of client.Dialer.Proxy.
func FromEnvironment(req *http.Request) (*url.URL, error) {
	cfg := ConfigFromEnvironment()
	envCache.Lock()
	if envCache.cfg == nil || *envCache.cfg != *cfg {
		envCache.cfg = cfg
		envCache.fn = cfg.ProxyFunc()
	}
	fn := envCache.fn
	envCache.Unlock()
	return fn(req)
}

var envCache struct {
	sync.Mutex
	cfg *Config
	fn  func(*http.Request) (*url.URL, error)
}

// ProxyFunc returns a function that selects the proxy for a request by
// c's rules, in the form of net/http.Transport.Proxy and
// client.Dialer.Proxy. It returns a nil URL for a direct connection, and
// an error when the variable to use is malformed. The URL's scheme is
// what picks the variable (ws and http, or wss and https); c is parsed
// once, here, and later changes to c do not affect the function.
func (c *Config) ProxyFunc() func(*http.Request) (*url.URL, error) {
	httpProxy, httpErr := parseProxy(c.HTTPProxy)
	httpsProxy, httpsErr := parseProxy(c.HTTPSProxy)
	allProxy, allErr := parseProxy(c.AllProxy)
	if httpProxy == nil && httpErr == nil {
		httpProxy, httpErr = allProxy, allErr
	} else if httpProxy != nil && c.CGI {
		httpProxy, httpErr = nil, errors.New("proxy: HTTP_PROXY ignored in a CGI environment (REQUEST_METHOD is set)")
	}
	if httpsProxy == nil && httpsErr == nil {
		httpsProxy, httpsErr = allProxy, allErr
	}
	np := parseNoProxy(c.NoProxy)
	return func(req *http.Request) (*url.URL, error) {
		u := req.URL
		var p *url.URL
		var err error
		port := u.Port()
		switch strings.ToLower(u.Scheme) {
		case "ws", "http":
			p, err = httpProxy, httpErr
			if port == "" {
				port = "80"
			}
		case "wss", "https":
			p, err = httpsProxy, httpsErr
			if port == "" {
				port = "443"
			}
		default:
			return nil, nil
		}
		if p == nil && err == nil {
			return nil, nil
		}
		if np.bypass(u.Hostname(), port) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		cp := *p
		return &cp, nil
	}
}

// parseProxy parses a proxy variable's value; "" means none.
func parseProxy(s string) (*url.URL, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || !strings.Contains(s, "://") {
		// "proxy:3128" parses with "proxy" as its scheme; a value with
		// no scheme means an HTTP proxy.
		if u2, err2 := url.Parse("http://" + s); err2 == nil && u2.Host != "" {
			u, err = u2, nil
		} else if err == nil {
			err = errors.New("no host")
		}
	}
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // ue's text repeats the value, password and all
		}
		return nil, fmt.Errorf("proxy: invalid proxy address %q: %w", redactValue(s), err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return nil, fmt.Errorf("proxy: unsupported proxy scheme %q in %q", u.Scheme, u.Redacted())
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("proxy: invalid proxy address %q: no host", u.Redacted())
	}
	return u, nil
}

// redactValue hides what looks like a password in a value that did not
// parse as a URL.
func redactValue(s string) string {
	at := strings.LastIndex(s, "@")
	if at < 0 {
		return s
	}
	start := strings.Index(s, "://")
	if start < 0 {
		start = 0
	} else {
		start += 3
	}
	if start > at {
		return s
	}
	if c := strings.Index(s[start:at], ":"); c >= 0 {
		return s[:start+c+1] + "xxxxx" + s[at:]
	}
	return s
}

// noProxy is a parsed NO_PROXY list.
type noProxy struct {
	all      bool
	prefixes []netip.Prefix
	addrs    []addrPort
	domains  []domainPort
}

type addrPort struct {
	addr netip.Addr
	port string // "" for any
}

type domainPort struct {
	name       string // lowercase, no leading "." or trailing "."
	subdomains bool   // only subdomains match, not name itself
	port       string
}

func parseNoProxy(s string) noProxy {
	var np noProxy
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		f = strings.ToLower(f)
		if f == "*" {
			np.all = true
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			np.prefixes = append(np.prefixes, p.Masked())
			continue
		}
		host, port := f, ""
		if h, p, err := net.SplitHostPort(f); err == nil {
			host, port = h, p
		} else if strings.HasPrefix(f, "[") && strings.HasSuffix(f, "]") {
			host = f[1 : len(f)-1]
		}
		if a, err := netip.ParseAddr(host); err == nil {
			np.addrs = append(np.addrs, addrPort{a.Unmap(), port})
			continue
		}
		d := domainPort{port: port}
		switch {
		case strings.HasPrefix(host, "*."):
			host, d.subdomains = host[2:], true
		case strings.HasPrefix(host, "."):
			host, d.subdomains = host[1:], true
		}
		d.name = strings.TrimSuffix(host, ".")
		if d.name == "" {
			continue
		}
		np.domains = append(np.domains, d)
	}
	return np
}

// bypass reports whether host:port is to be reached directly.
func (np *noProxy) bypass(host, port string) bool {
	if np.all {
		return true
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap()
		for _, p := range np.prefixes {
			if p.Contains(a) {
				return true
			}
		}
		for _, e := range np.addrs {
			if e.addr == a && (e.port == "" || e.port == port) {
				return true
			}
		}
		return false
	}
	for _, d := range np.domains {
		if d.port != "" && d.port != port {
			continue
		}
		if strings.HasSuffix(host, "."+d.name) || (!d.subdomains && host == d.name) {
			return true
		}
	}
	return false
}

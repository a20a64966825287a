package proxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func selectProxy(t *testing.T, fn func(*http.Request) (*url.URL, error), rawURL string) (string, error) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := fn(&http.Request{URL: u})
	if p == nil {
		return "", err
	}
	return p.String(), err
}

func TestConfigSelection(t *testing.T) {
	cfg := &Config{
		HTTPProxy:  "http://hp:3128",
		HTTPSProxy: "https://user:pw@sp:8443",
		AllProxy:   "socks5h://ap:1080",
	}
	fn := cfg.ProxyFunc()
	for _, tc := range []struct{ url, want string }{
		{"ws://example.com/chat", "http://hp:3128"},
		{"http://example.com/", "http://hp:3128"},
		{"wss://example.com/chat", "https://user:pw@sp:8443"},
		{"https://example.com/", "https://user:pw@sp:8443"},
		{"WSS://example.com/", "https://user:pw@sp:8443"},
		{"ftp://example.com/", ""},
	} {
		got, err := selectProxy(t, fn, tc.url)
		if err != nil || got != tc.want {
			t.Errorf("%s: proxy %q, %v; want %q", tc.url, got, err, tc.want)
		}
	}

	// ALL_PROXY stands in for an empty specific variable.
	fn = (&Config{HTTPProxy: "hp:3128", AllProxy: "socks5://ap"}).ProxyFunc()
	for _, tc := range []struct{ url, want string }{
		{"ws://example.com/", "http://hp:3128"},
		{"wss://example.com/", "socks5://ap"},
	} {
		if got, err := selectProxy(t, fn, tc.url); err != nil || got != tc.want {
			t.Errorf("%s: proxy %q, %v; want %q", tc.url, got, err, tc.want)
		}
	}

	// The returned URL is a copy.
	fn = (&Config{HTTPProxy: "http://hp:1"}).ProxyFunc()
	u, _ := url.Parse("ws://x/")
	p1, _ := fn(&http.Request{URL: u})
	p1.Host = "changed"
	if p2, _ := fn(&http.Request{URL: u}); p2.Host != "hp:1" {
		t.Fatal("ProxyFunc returned shared state")
	}
}

func TestParseProxy(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"", "", ""},
		{"  ", "", ""},
		{"proxy:3128", "http://proxy:3128", ""},
		{"127.0.0.1:3128", "http://127.0.0.1:3128", ""},
		{"[::1]:3128", "http://[::1]:3128", ""},
		{"HTTP://Proxy:1", "http://Proxy:1", ""},
		{"socks5h://u:p@s:1080", "socks5h://u:p@s:1080", ""},
		{"ftp://proxy:21", "", "unsupported proxy scheme"},
		{"http://u:secret@:1", "", "no host"},
		{"http://u:secret@%zz:1", "", "invalid proxy address"},
	} {
		u, err := parseProxy(tc.in)
		got := ""
		if u != nil {
			got = u.String()
		}
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("parseProxy(%q) = %q, %v; want %q, error with %q", tc.in, got, err, tc.want, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("parseProxy(%q): error %q leaks the password", tc.in, err)
		}
	}

	// A malformed variable fails only the requests that would use it.
	fn := (&Config{HTTPProxy: "ftp://x:1", HTTPSProxy: "https://ok:1", NoProxy: "direct.test"}).ProxyFunc()
	if _, err := selectProxy(t, fn, "ws://example.com/"); err == nil {
		t.Error("malformed HTTP_PROXY accepted")
	}
	if got, err := selectProxy(t, fn, "ws://direct.test/"); err != nil || got != "" {
		t.Errorf("NO_PROXY destination with a malformed HTTP_PROXY: %q, %v", got, err)
	}
	if got, err := selectProxy(t, fn, "wss://example.com/"); err != nil || got != "https://ok:1" {
		t.Errorf("wss with a malformed HTTP_PROXY: %q, %v", got, err)
	}
}

func TestNoProxy(t *testing.T) {
	for _, tc := range []struct {
		noProxy string
		url     string
		bypass  bool
	}{
		{"", "ws://example.com/", false},
		{"*", "ws://example.com/", true},
		{"foo.test, *", "wss://a.b/", true},
		// Domains: the name and its subdomains.
		{"example.com", "ws://example.com/", true},
		{"example.com", "ws://a.b.example.com/", true},
		{"example.com", "ws://notexample.com/", false},
		{"example.com", "ws://example.com.evil/", false},
		{"EXAMPLE.com.", "ws://Example.COM./", true},
		// Leading "." or "*.": subdomains only.
		{".example.com", "ws://a.example.com/", true},
		{".example.com", "ws://example.com/", false},
		{"*.example.com", "ws://a.example.com/", true},
		{"*.example.com", "ws://example.com/", false},
		// Ports, explicit and default.
		{"example.com:8080", "ws://example.com:8080/", true},
		{"example.com:8080", "ws://example.com:8081/", false},
		{"example.com:80", "ws://example.com/", true},
		{"example.com:443", "wss://example.com/", true},
		{"example.com:443", "ws://example.com/", false},
		// IP addresses and CIDR prefixes.
		{"127.0.0.1", "ws://127.0.0.1:9000/", true},
		{"127.0.0.1:9000", "ws://127.0.0.1:9000/", true},
		{"127.0.0.1:9001", "ws://127.0.0.1:9000/", false},
		{"10.0.0.0/8", "ws://10.200.3.4/", true},
		{"10.0.0.0/8", "ws://11.0.0.1/", false},
		{"10.0.0.0/8", "ws://10.example/", false},
		{"::1", "ws://[::1]:8080/", true},
		{"[::1]:8080", "ws://[::1]:8080/", true},
		{"[::1]:8080", "ws://[::1]:8081/", false},
		{"fd00::/8", "ws://[fd12::1]/", true},
		{"127.0.0.0/8", "ws://[::ffff:127.0.0.1]/", true},
		// Names are not resolved: localhost is only a name.
		{"127.0.0.1", "ws://localhost/", false},
		{"localhost", "ws://localhost:1234/", true},
		// Separators and blanks.
		{" a.test ,b.test  c.test,,", "ws://c.test/", true},
	} {
		fn := (&Config{HTTPProxy: "http://p:1", HTTPSProxy: "http://p:1", NoProxy: tc.noProxy}).ProxyFunc()
		got, err := selectProxy(t, fn, tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if (got == "") != tc.bypass {
			t.Errorf("NO_PROXY=%q, %s: bypass = %v, want %v", tc.noProxy, tc.url, got == "", tc.bypass)
		}
	}
}

func TestFromEnvironment(t *testing.T) {
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD"} {
		t.Setenv(k, "")
	}
	if got, _ := selectProxy(t, FromEnvironment, "ws://example.com/"); got != "" {
		t.Fatalf("empty environment selected %q", got)
	}
	t.Setenv("http_proxy", "http://lower:1")
	t.Setenv("HTTPS_PROXY", "http://upper:2")
	t.Setenv("all_proxy", "socks5h://all:3")
	t.Setenv("no_proxy", "skip.test")
	for _, tc := range []struct{ url, want string }{
		{"ws://example.com/", "http://lower:1"},
		{"wss://example.com/", "http://upper:2"},
		{"wss://skip.test/", ""},
	} {
		if got, err := selectProxy(t, FromEnvironment, tc.url); err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.url, got, err, tc.want)
		}
	}
	// Changes apply to the next call.
	t.Setenv("HTTP_PROXY", "http://upper:9")
	if got, _ := selectProxy(t, FromEnvironment, "ws://example.com/"); got != "http://upper:9" {
		t.Errorf("after setting HTTP_PROXY: %q", got)
	}
	t.Setenv("HTTP_PROXY", "")
	t.Setenv("http_proxy", "")
	if got, _ := selectProxy(t, FromEnvironment, "ws://example.com/"); got != "socks5h://all:3" {
		t.Errorf("ALL_PROXY fallback: %q", got)
	}
	// httpoxy: under CGI, HTTP_PROXY may come from a request header.
	t.Setenv("HTTP_PROXY", "http://evil:1")
	t.Setenv("REQUEST_METHOD", "GET")
	if got, err := selectProxy(t, FromEnvironment, "ws://example.com/"); err == nil || got != "" {
		t.Errorf("CGI: HTTP_PROXY used: %q, %v", got, err)
	}
	if got, _ := selectProxy(t, Direct, "ws://example.com/"); got != "" {
		t.Errorf("Direct selected %q", got)
	}
}

package proxy_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"time"

	"github.com/realtime-go/realtime/proxy"
)

// Tunnel to a destination through an HTTPS proxy that wants credentials.
func ExampleDialer() {
	proxyURL, _ := url.Parse("https://alice:s3cret@proxy.example:3129")
	d := &proxy.Dialer{
		URL:           proxyURL,
		TLSConfig:     &tls.Config{MinVersion: tls.VersionTLS12}, // for the proxy only
		ConnectHeader: http.Header{"X-Request-Id": {"42"}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := d.DialContext(ctx, "tcp", "chat.example:443")
	var pe *proxy.Error
	switch {
	case errors.Is(err, proxy.ErrAuth):
		log.Fatal("the proxy refused alice's credentials")
	case errors.As(err, &pe) && pe.Status != 0:
		log.Fatalf("the proxy refused the tunnel with %d", pe.Status)
	case err != nil:
		log.Fatal(err)
	}
	defer nc.Close()
	// nc is a tunnel to chat.example:443: start TLS with the origin on it.
}

// Which proxy serves which URL, by the rules of the usual variables.
func ExampleConfig() {
	cfg := &proxy.Config{
		HTTPProxy:  "proxy.internal:3128", // no scheme means http://
		HTTPSProxy: "https://proxy.internal:3129",
		NoProxy:    "localhost, .corp.example, 10.0.0.0/8, api.example:8443",
	}
	choose := cfg.ProxyFunc()
	for _, s := range []string{
		"ws://chat.example/socket",
		"wss://chat.example/socket",
		"wss://build.corp.example/events",
		"ws://10.1.2.3:8080/",
		"wss://api.example:8443/",
		"wss://api.example/",
	} {
		u, _ := url.Parse(s)
		p, err := choose(&http.Request{URL: u})
		if err != nil {
			log.Fatal(err)
		}
		if p == nil {
			fmt.Println(s, "-> direct")
		} else {
			fmt.Println(s, "->", p)
		}
	}
	// Output:
	// ws://chat.example/socket -> http://proxy.internal:3128
	// wss://chat.example/socket -> https://proxy.internal:3129
	// wss://build.corp.example/events -> direct
	// ws://10.1.2.3:8080/ -> direct
	// wss://api.example:8443/ -> direct
	// wss://api.example/ -> https://proxy.internal:3129
}

// Package proxy dials TCP connections through HTTP, HTTPS and SOCKS5
// proxies, and selects a proxy for a URL from the environment.
//
// A [Dialer] tunnels through an http:// or https:// proxy with CONNECT
// (RFC 9110 §9.3.6), with credentials from the proxy URL sent as
// Proxy-Authorization: Basic, extra CONNECT header fields, and a TLS
// configuration for an https:// proxy kept apart from the destination's.
// It goes through socks5:// and socks5h:// proxies with
// golang.org/x/net/proxy, with username/password authentication. The
// context bounds the dial and the proxy exchange, never the life of the
// connection returned.
//
//	d := &proxy.Dialer{URL: proxyURL}
//	nc, err := d.DialContext(ctx, "tcp", "example.com:443")
//
// Package client does this for WebSocket and EventSource URLs; most
// programs set client.Dialer.Proxy and never use a proxy.Dialer directly.
//
// # Choosing a proxy
//
// [FromEnvironment] follows HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and
// NO_PROXY as [Config] describes: ws:// URLs use the HTTP proxy and wss://
// URLs the HTTPS one, as http:// and https:// URLs do. A proxy function
// has the shape of net/http.Transport.Proxy, so net/http.ProxyURL also
// fits where one proxy serves every URL, and [Direct] turns proxies off.
//
// # Errors
//
// A failed dial returns an [*Error] naming the step that failed. When an
// HTTP proxy refuses a CONNECT, the error carries its status and
// response; errors.Is(err, [ErrAuth]) tells a refusal of the
// credentials (407, or 401 as tinyproxy sends for a wrong password, or a
// SOCKS5 authentication failure) from other refusals.
//
// # Name
//
// This package's name is also that of golang.org/x/net/proxy, which it
// uses for SOCKS5; a file that needs both imports that one as xproxy.
package proxy

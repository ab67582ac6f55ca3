package sender

import (
	"crypto/tls"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
)

// Setting up an http channel's direct path (httpconn.go): whether its
// requests can take it, and the request head they share, written once.

// httpProxy is the proxy of a provider's URL, if any, as
// http.DefaultTransport finds it. A variable for tests: the environment is
// read once per process, and never proxies a loopback address.
var httpProxy = http.ProxyFromEnvironment

// setDirect sets up the direct path (httpconn.go) for requests to u, unless
// they need what only http.Transport does: a proxy, a host name to
// convert to ASCII, an IPv6 zone, or a method or header name net/http
// would refuse (its error stays the channel's).
func (d *httpDriver) setDirect(u *url.URL, tlsConf *tls.Config) {
	if proxy, err := httpProxy(&http.Request{URL: u}); proxy != nil || err != nil {
		return
	}
	host := strings.TrimSuffix(u.Host, ":")
	if !isToken(d.method) || !isPrintableASCII(host) || strings.Contains(host, "%") {
		return
	}
	canon := map[string]int{} // a header's last template wins, as Header.Set
	for i := range d.headers {
		h := &d.headers[i]
		if !isToken(h.name) {
			return
		}
		h.canon = http.CanonicalHeaderKey(h.name)
		if j, ok := canon[h.canon]; ok {
			d.headers[j].skip = true
		}
		canon[h.canon] = i
	}
	_, customAgent := canon["User-Agent"]
	_, customType := canon["Content-Type"]
	_, customKey := canon["Idempotency-Key"]
	_, d.closeEach = canon["Connection"]
	d.writeType, d.writeKey = !customType, !customKey
	basic := d.username != "" || d.password != ""
	for i := range d.headers {
		switch h := &d.headers[i]; h.canon {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			h.skip = true // net/http's request writer leaves them out
		case "Authorization":
			h.skip = h.skip || basic
		}
	}
	if basic {
		auth := base64.StdEncoding.EncodeToString([]byte(d.username + ":" + d.password))
		d.authLine = []byte("Authorization: Basic " + auth + "\r\n")
	}
	switch d.method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		d.sendLength = true
	}
	head := d.method + " " + u.RequestURI() + " HTTP/1.1\r\nHost: " + host + "\r\n"
	if !customAgent {
		head += "User-Agent: " + userAgentValue[0] + "\r\n"
	}
	d.head = []byte(head)
	var conf *tls.Config
	if u.Scheme == "https" {
		conf = &tls.Config{}
		if tlsConf != nil {
			conf = tlsConf.Clone()
		}
		if conf.ServerName == "" {
			conf.ServerName = u.Hostname()
		}
		conf.NextProtos = []string{"http/1.1"} // what this path speaks
	}
	d.direct = newHTTPDirect(directAddr(u.Scheme, u.Hostname(), u.Port()), conf, d.method)
}

// isToken says whether s is an HTTP token (a method, a header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// isPrintableASCII says whether s has only visible ASCII characters.
func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return s != ""
}

// validHeaderValue says whether net/http would send v as a header value:
// no control characters but tab.
func validHeaderValue(v []byte) bool {
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

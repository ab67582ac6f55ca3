package sender

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/dropgate/dropgate/store"
)

// The direct path of an http channel: each worker owns one keep-alive
// HTTP/1.1 connection and makes its exchange on its own goroutine, the
// request written in one piece and the answer read by http.ReadResponse.
// Through http.Transport every request crossed two more goroutines (the
// connection's writeLoop and readLoop), their channels and the pool's
// locks: about a quarter of the sender's CPU a message against a bare
// client loop (sender/BENCHMARKS.md, session 9). A worker sends one
// message at a time, so it needs none of that.

// Dial, handshake and idle limits, as http.DefaultTransport's.
const (
	directDialTimeout  = 30 * time.Second
	directKeepAlive    = 30 * time.Second
	directTLSTimeout   = 10 * time.Second
	directIdleTimeout  = 90 * time.Second
	directMax1xx       = 5
	directReadBufBytes = 4 << 10
	// directMaxHead bounds the heads of one answer (1xx ones included),
	// as http.Transport's default MaxResponseHeaderBytes.
	directMaxHead = 10 << 20
)

// errDriverClosed is what a send gets once its channel's driver closed.
var errDriverClosed = errors.New("the channel is closed")

// httpDirect is how an http channel's direct path dials its provider, and
// every connection it has open (so Close ends them all).
type httpDirect struct {
	addr    string      // host:port to dial
	tls     *tls.Config // nil: plain HTTP
	dialer  net.Dialer
	readReq *http.Request // tells http.ReadResponse the request's method
	// idleTimeout is how long a connection stays open unused:
	// directIdleTimeout, shorter in tests.
	idleTimeout time.Duration

	mu     sync.Mutex
	conns  map[*httpConn]struct{}
	spare  []*httpSession // sessions of Send calls made outside a worker
	closed bool
}

func newHTTPDirect(addr string, tlsConf *tls.Config, method string) *httpDirect {
	return &httpDirect{addr: addr, tls: tlsConf, readReq: &http.Request{Method: method}, idleTimeout: directIdleTimeout,
		dialer: net.Dialer{Timeout: directDialTimeout, KeepAlive: directKeepAlive}, conns: map[*httpConn]struct{}{}}
}

// httpConn is one connection of the direct path, used by one session at a
// time.
type httpConn struct {
	nc net.Conn
	br *bufio.Reader
	// read counts the bytes read since the last request was written: a
	// failure before the first is one the provider never answered.
	read int
	// heads: the heads of an answer are being read, at most
	// directMaxHead bytes.
	heads  bool
	reused bool // an exchange completed on it before
	// idle closes the connection once unused for the idle timeout; nil
	// until its first exchange ended.
	idle *time.Timer
	// ctx is the context whose end aborts the exchange in progress;
	// unwatch undoes that. A worker's context lasts until a call timed
	// out, so this is set up once per connection, not per message.
	ctx     context.Context
	unwatch func() bool
}

// Read counts what the response reader takes from the connection.
func (c *httpConn) Read(p []byte) (int, error) {
	if c.heads && c.read >= directMaxHead {
		return 0, fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", directMaxHead)
	}
	n, err := c.nc.Read(p)
	c.read += n
	return n, err
}

// abort ends the connection under whatever uses it.
func (c *httpConn) abort() { c.nc.Close() }

// dial opens a connection to the provider, with TLS when the URL is https.
func (p *httpDirect) dial(ctx context.Context) (*httpConn, error) {
	nc, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	if p.tls != nil {
		tc := tls.Client(nc, p.tls)
		hctx, cancel := context.WithTimeout(ctx, directTLSTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	c := &httpConn{nc: nc}
	c.br = bufio.NewReaderSize(c, directReadBufBytes)
	p.mu.Lock()
	closed := p.closed
	if !closed {
		p.conns[c] = struct{}{}
	}
	p.mu.Unlock()
	if closed {
		nc.Close()
		return nil, errDriverClosed
	}
	return c, nil
}

// forget closes c and stops tracking it.
func (p *httpDirect) forget(c *httpConn) {
	c.nc.Close()
	if c.unwatch != nil {
		c.unwatch()
	}
	if c.idle != nil {
		c.idle.Stop()
	}
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// close closes every connection, in use or idle; later sends fail.
func (p *httpDirect) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for c := range p.conns {
		c.nc.Close()
	}
	p.spare = nil
}

// httpSession is one worker's side of the direct path: its connection and
// the buffers its requests and answers are built in, reused message after
// message. Only its worker uses it.
type httpSession struct {
	d      *httpDriver
	c      *httpConn
	wbuf   []byte   // the request: head and body
	body   []byte   // the rendered body
	hv     []byte   // a rendered header value
	answer []byte   // the provider's answer
	data   httpData // what the templates see
}

// Send delivers m on the session's connection.
func (s *httpSession) Send(ctx context.Context, m *store.Message) (string, error) {
	return s.d.send(ctx, m, s)
}

// Close closes the session's connection.
func (s *httpSession) Close() error {
	s.drop()
	return nil
}

// drop closes the session's connection, if any.
func (s *httpSession) drop() {
	if s.c != nil {
		s.d.direct.forget(s.c)
		s.c = nil
	}
}

// conn returns a connection watched by ctx: the session's, unless fresh
// is set or it cannot be used any more, else a new one.
func (s *httpSession) conn(ctx context.Context, fresh bool) (*httpConn, error) {
	if c := s.c; c != nil && !fresh {
		ok := c.idle == nil || c.idle.Stop() // false: the idle timer closed it
		if ok && c.ctx != ctx {
			if c.unwatch != nil && !c.unwatch() {
				ok = false // its old context ended and aborted it
			} else {
				c.ctx, c.unwatch = ctx, context.AfterFunc(ctx, c.abort)
			}
		}
		if ok {
			return c, nil
		}
	}
	s.drop()
	c, err := s.d.direct.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.ctx, c.unwatch = ctx, context.AfterFunc(ctx, c.abort)
	s.c = c
	return c, nil
}

// roundTrip writes the request req (head and body) and reads the head of
// the answer. A reused connection that fails before the first byte of an
// answer was most likely closed by the provider while it sat idle: the
// request goes out once more on a new connection, as net/http does for a
// request with an Idempotency-Key. Once an answer started, it never does.
func (s *httpSession) roundTrip(ctx context.Context, req []byte) (*http.Response, error) {
	for retried := false; ; retried = true {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		c, err := s.conn(ctx, retried)
		if err != nil {
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			return nil, err
		}
		c.read = 0
		_, err = c.nc.Write(req)
		var resp *http.Response
		if err == nil {
			c.heads = true
			resp, err = readResponse(c.br, s.d.direct.readReq)
			c.heads = false
		}
		if err == nil {
			return resp, nil
		}
		reused, read := c.reused, c.read
		s.drop()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if retried || !reused || read > 0 {
			return nil, err
		}
	}
}

// readResponse reads the final answer, past informational (1xx) ones.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for n := 0; ; n++ {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode < 100 || resp.StatusCode > 199 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
		if n == directMax1xx {
			return nil, errors.New("net/http: too many 1xx informational responses")
		}
	}
}

// readBody reads the answer's body into the session's buffer, at most
// maxResponse bytes, then keeps the connection for the next request or
// closes it: kept only when the body was read to its end and the provider
// keeps the connection open (HTTP/1.1 without Connection: close).
func (s *httpSession) readBody(ctx context.Context, resp *http.Response) ([]byte, error) {
	raw, eof, err := readAnswerEOF(s.answer[:0], resp.Body)
	s.answer = raw[:0]
	c := s.c
	if err != nil || !eof || resp.Close || !resp.ProtoAtLeast(1, 1) || resp.StatusCode < 200 ||
		c.br.Buffered() > 0 || s.d.closeEach {
		s.drop()
	} else {
		c.reused = true
		if c.idle == nil {
			c.idle = time.AfterFunc(s.d.direct.idleTimeout, c.abort)
		} else {
			c.idle.Reset(s.d.direct.idleTimeout)
		}
	}
	if err != nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return raw, err
}

// readAnswerEOF appends at most maxResponse bytes of r to b, and says
// whether r ended there.
func readAnswerEOF(b []byte, r io.Reader) ([]byte, bool, error) {
	for len(b) < maxResponse {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(max(cap(b), 4<<10), maxResponse-len(b)))
		}
		n, err := r.Read(b[len(b):min(cap(b), maxResponse)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, true, nil
		}
		if err != nil {
			return b, false, err
		}
	}
	return b, false, nil
}

// session returns a session for a Send made outside a worker.
func (p *httpDirect) session(d *httpDriver) *httpSession {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.spare); n > 0 {
		s := p.spare[n-1]
		p.spare = p.spare[:n-1]
		return s
	}
	return &httpSession{d: d}
}

// putSession keeps s, and its connection, for the next Send.
func (p *httpDirect) putSession(s *httpSession) {
	p.mu.Lock()
	closed := p.closed
	if !closed {
		p.spare = append(p.spare, s)
	}
	p.mu.Unlock()
	if closed {
		s.drop()
	}
}

// directAddr is the host:port a URL's requests go to.
func directAddr(scheme, host, port string) string {
	if port == "" {
		port = "80"
		if scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(host, port)
}

// invalidHeaderValue is net/http's error for a header value it would not
// send (a control character, a line break).
func invalidHeaderValue(name string) error {
	return fmt.Errorf("net/http: invalid header field value for %q", name)
}

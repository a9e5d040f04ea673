package raftstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/vigilsec/vigil/core"
)

// TLSIdentity is how this node proves who it is on the raft transport and
// whom it accepts: every connection, in and out, is mutual TLS 1.3 where
// both certificates must chain to CAs (and, when Peer is set, pass it).
type TLSIdentity struct {
	// Certificate is this node's certificate chain and key. It must be
	// valid for ServerName, for both server and client authentication.
	Certificate tls.Certificate
	// CAs are the cluster CAs a peer's certificate must chain to.
	CAs *x509.CertPool
	// ServerName is the DNS name in every node's certificate, used to
	// verify the node dialled (see clustertls.ServerName).
	ServerName string
	// Peer, when set, is called with the peer's verified leaf certificate
	// on every connection (both directions); an error refuses it. Used to
	// refuse the certificates of nodes removed from the cluster.
	Peer func(cert *x509.Certificate) error
}

// ErrNoIdentity is returned by dials while the transport has no TLS
// identity (a node that is sealed or has not joined yet).
var ErrNoIdentity = &core.Error{Code: core.CodeUnavailable, Msg: "raft: the cluster transport has no TLS identity (node sealed or not joined)"}

// Protocols on the cluster port, told apart by TLS ALPN: raft's own
// traffic, and the cluster RPC (an HTTP/1.1 API between nodes: forwarded
// writes, read indexes, server stats, forwarded client requests). A peer
// that offers no protocol speaks raft.
const (
	ALPNRaft = "vigil-raft/1"
	ALPNRPC  = "vigil-rpc/1"
)

// HandshakeTimeout bounds a TLS handshake on the raft port: a peer that
// stalls it is dropped.
const HandshakeTimeout = 10 * time.Second

// SetTLSIdentity installs (or replaces) the node's transport identity; nil
// removes it, after which every connection is refused. Connections already
// established keep the identity they were made with. It has no effect on a
// store opened with Config.Plaintext.
func (s *Store) SetTLSIdentity(id *TLSIdentity) {
	if st, ok := s.stream.(*tlsStream); ok {
		st.id.Store(id)
	}
	if id == nil && s.rpc != nil {
		s.rpc.tr.CloseIdleConnections()
	}
}

// TLSReady reports whether the transport has a TLS identity (false for
// plaintext stores).
func (s *Store) TLSReady() bool {
	st, ok := s.stream.(*tlsStream)
	return ok && st.id.Load() != nil
}

// isLoopback reports whether a TCP address is on a loopback interface.
func isLoopback(a net.Addr) bool {
	t, ok := a.(*net.TCPAddr)
	return ok && t.IP != nil && t.IP.IsLoopback()
}

// newTransport listens on bind and returns a raft TCP transport advertising
// advertise (or the bound address). The stream is mutual TLS (identity may
// be nil: no connection until SetTLSIdentity) unless plaintext is set,
// which is refused unless both addresses are loopback.
func newTransport(bind, advertise string, plaintext bool, id *TLSIdentity, logger hclog.Logger) (*raft.NetworkTransport, raft.StreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, nil, core.Errorf(core.CodeUnavailable, "raft: listen on %s: %w", bind, err)
	}
	bound := ln.Addr().(*net.TCPAddr)
	adv := bound
	if advertise != "" {
		host, port, err := net.SplitHostPort(advertise)
		if err != nil { // no port given
			host, port = advertise, ""
		}
		if port == "" || port == "0" {
			port = strconv.Itoa(bound.Port)
		}
		if adv, err = net.ResolveTCPAddr("tcp", net.JoinHostPort(host, port)); err != nil {
			_ = ln.Close()
			return nil, nil, core.Invalid("raft: advertise address %q: %v", advertise, err)
		}
	}
	if adv.IP == nil || adv.IP.IsUnspecified() {
		_ = ln.Close()
		return nil, nil, core.Invalid("raft: address %s is not advertisable; set AdvertiseAddr", adv)
	}
	var stream raft.StreamLayer
	if plaintext {
		if !isLoopback(bound) || !isLoopback(adv) {
			_ = ln.Close()
			return nil, nil, core.Invalid("raft: plaintext transport refused on %s (advertised %s): the cluster port of a non-loopback address needs mutual TLS", bound, adv)
		}
		stream = &tcpStream{ln: ln, advertise: adv}
	} else {
		t := newTLSStream(ln, adv, logger)
		t.id.Store(id)
		stream = t
	}
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  logger,
	}), stream, nil
}

// tcpStream is a raft.StreamLayer over plain TCP (loopback only).
type tcpStream struct {
	ln        net.Listener
	advertise net.Addr
}

func (t *tcpStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(addr), timeout)
}
func (t *tcpStream) Accept() (net.Conn, error) { return t.ln.Accept() }
func (t *tcpStream) Close() error              { return t.ln.Close() }
func (t *tcpStream) Addr() net.Addr            { return t.advertise }

// tlsStream is a raft.StreamLayer over mutual TLS. Connections are accepted
// by a goroutine that runs each handshake in its own goroutine under
// HandshakeTimeout, so a stalled or hostile peer never blocks the others;
// only authenticated connections reach raft.
type tlsStream struct {
	ln        net.Listener
	advertise net.Addr
	log       hclog.Logger
	id        atomic.Pointer[TLSIdentity]

	conns     chan net.Conn // raft's connections (ALPNRaft, or no ALPN)
	rpcConns  chan net.Conn // the cluster RPC's (ALPNRPC)
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var _ raft.StreamLayer = (*tlsStream)(nil)

func newTLSStream(ln net.Listener, adv net.Addr, log hclog.Logger) *tlsStream {
	t := &tlsStream{ln: ln, advertise: adv, log: log, conns: make(chan net.Conn), rpcConns: make(chan net.Conn), done: make(chan struct{})}
	t.wg.Add(1)
	go t.acceptLoop()
	return t
}

func (t *tlsStream) acceptLoop() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			select {
			case <-t.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			t.log.Error("raft transport: accept", "error", err)
			time.Sleep(50 * time.Millisecond) // e.g. EMFILE: do not spin
			continue
		}
		t.wg.Add(1)
		go t.handshake(c)
	}
}

func (t *tlsStream) handshake(c net.Conn) {
	defer t.wg.Done()
	id := t.id.Load()
	if id == nil {
		t.log.Debug("raft transport: refused a connection: no TLS identity (sealed or not joined)", "remote", c.RemoteAddr().String())
		_ = c.Close()
		return
	}
	tc := tls.Server(c, id.serverConfig())
	ctx, cancel := context.WithTimeout(context.Background(), HandshakeTimeout)
	defer cancel()
	go func() {
		select {
		case <-t.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := tc.HandshakeContext(ctx); err != nil {
		t.log.Warn("raft transport: refused a connection", "remote", c.RemoteAddr().String(), "error", err)
		_ = c.Close()
		return
	}
	to := t.conns
	if tc.ConnectionState().NegotiatedProtocol == ALPNRPC {
		to = t.rpcConns
	}
	select {
	case to <- tc:
	case <-t.done:
		_ = tc.Close()
	}
}

// Accept returns the next authenticated connection.
func (t *tlsStream) Accept() (net.Conn, error) {
	select {
	case c := <-t.conns:
		return c, nil
	case <-t.done:
		return nil, net.ErrClosed
	}
}

// Dial connects to a peer for raft and authenticates both ends.
func (t *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return t.dial(ctx, string(addr), ALPNRaft)
}

// dial connects to addr speaking protocol proto (ALPNRaft or ALPNRPC),
// authenticating both ends with the current identity.
func (t *tlsStream) dial(ctx context.Context, addr, proto string) (net.Conn, error) {
	id := t.id.Load()
	if id == nil {
		return nil, ErrNoIdentity
	}
	cfg := id.clientConfig()
	cfg.NextProtos = []string{proto}
	d := &tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cluster transport: dial %s: %w", addr, err)
	}
	if proto == ALPNRPC && c.(*tls.Conn).ConnectionState().NegotiatedProtocol != ALPNRPC {
		_ = c.Close()
		return nil, fmt.Errorf("cluster transport: %s does not speak the cluster RPC protocol", addr)
	}
	return c, nil
}

// rpcListener hands the stream's cluster RPC connections to an
// http.Server. Closing it does nothing: the stream closes them.
type rpcListener struct{ t *tlsStream }

func (l rpcListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.t.rpcConns:
		peer := ""
		if tc, ok := c.(*tls.Conn); ok {
			if cs := tc.ConnectionState(); len(cs.PeerCertificates) > 0 {
				peer = cs.PeerCertificates[0].Subject.CommonName
			}
		}
		return peerConn{Conn: c, peer: peer}, nil
	case <-l.t.done:
		return nil, net.ErrClosed
	}
}
func (l rpcListener) Close() error   { return nil }
func (l rpcListener) Addr() net.Addr { return l.t.advertise }

func (t *tlsStream) Close() error {
	var err error
	t.closeOnce.Do(func() {
		close(t.done)
		err = t.ln.Close()
		t.wg.Wait()
	})
	return err
}

func (t *tlsStream) Addr() net.Addr { return t.advertise }

func (id *TLSIdentity) verify(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the peer sent no certificate")
	}
	if id.Peer != nil {
		return id.Peer(cs.PeerCertificates[0])
	}
	return nil
}

func (id *TLSIdentity) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{id.Certificate},
		NextProtos:       []string{ALPNRaft, ALPNRPC},
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        id.CAs,
		VerifyConnection: id.verify,
	}
}

func (id *TLSIdentity) clientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		Certificates:     []tls.Certificate{id.Certificate},
		RootCAs:          id.CAs,
		ServerName:       id.ServerName,
		VerifyConnection: id.verify,
	}
}

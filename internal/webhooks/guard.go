package webhooks

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrRefusedURL is wrapped by every refusal of CheckURL and of a Guard's
// client: the error text says why ("scheme must be https", "host
// rebind.example resolves to 127.0.0.1, a loopback address").
var ErrRefusedURL = errors.New("webhooks: refused URL")

func refusef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRefusedURL, fmt.Sprintf(format, args...))
}

// Resolver looks host names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

var _ Resolver = (*net.Resolver)(nil)

// Guard keeps webhook requests away from Cairn's own network: it checks an
// endpoint's URL when it is registered (CheckURL) and every address its
// client dials (Client), so a name that resolved to a public address at
// registration and to a private one later (DNS rebinding) is refused
// too. The zero Guard is the strict one: https only, no exceptions, the
// system resolver. A Guard must not be changed while in use; its methods
// are then safe for concurrent use.
type Guard struct {
	// AllowHTTP permits plain http (operators, local development, tests).
	AllowHTTP bool
	// Allow lists addresses permitted even though in a refused range
	// (an operator's internal receiver, a test server on loopback).
	Allow []netip.Prefix
	// Resolver resolves host names for CheckURL and the client's dialer;
	// nil means net.DefaultResolver.
	Resolver Resolver
}

type refusedRange struct {
	prefix netip.Prefix
	reason string
}

// refusedRanges are checked in order, so a specific range (a metadata
// address) is named before the range that contains it.
var refusedRanges = func() []refusedRange {
	var rs []refusedRange
	add := func(reason string, prefixes ...string) {
		for _, p := range prefixes {
			rs = append(rs, refusedRange{netip.MustParsePrefix(p), reason})
		}
	}
	add("a cloud metadata address", "169.254.169.254/32", "fd00:ec2::254/128", "100.100.100.200/32")
	add("the broadcast address", "255.255.255.255/32")
	add("an unspecified address", "0.0.0.0/32", "::/128")
	add("a loopback address", "127.0.0.0/8", "::1/128")
	add("a \"this network\" address (0.0.0.0/8)", "0.0.0.0/8")
	add("a private address", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
	add("a unique local address (private, fc00::/7)", "fc00::/7")
	add("a shared (CGNAT) address", "100.64.0.0/10")
	add("a link-local address", "169.254.0.0/16", "fe80::/10")
	add("a site-local address (deprecated)", "fec0::/10")
	add("a multicast address", "224.0.0.0/4", "ff00::/8")
	add("a reserved address", "240.0.0.0/4")
	add("an IETF protocol assignment address", "192.0.0.0/24")
	add("a benchmarking address", "198.18.0.0/15", "2001:2::/48")
	add("a documentation address", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24",
		"2001:db8::/32", "3fff::/20")
	add("a deprecated 6to4 relay anycast address", "192.88.99.0/24")
	add("a discard-only address", "100::/64")
	add("an ORCHID address", "2001:10::/28", "2001:20::/28")
	// Teredo hides its IPv4 addresses (one of them obfuscated); no
	// webhook receiver needs it.
	add("a Teredo address", "2001::/32")
	add("a local-use NAT64 address", "64:ff9b:1::/48")
	// IPv4-compatible addresses (::a.b.c.d) are deprecated and routed
	// nowhere useful; :: and ::1 are named above.
	add("an IPv4-compatible address (deprecated)", "::/96")
	return rs
}()

var (
	v4Compatible = netip.MustParsePrefix("::/96")
	nat64        = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour    = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 address an IPv6 address carries by
// construction: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
// (::a.b.c.d, but not :: or ::1), NAT64 (64:ff9b::a.b.c.d) and 6to4
// (2002:aabb:ccdd::/48). A connection to one reaches that IPv4
// address, so it is checked as that address.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if a.Is4In6() {
		return a.Unmap(), true
	}
	if !a.Is6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case v4Compatible.Contains(a) && a != netip.IPv6Unspecified() && a != netip.IPv6Loopback():
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// Refused reports whether a webhook may not be sent to a, and why
// ("a loopback address"): loopback, unspecified, private (RFC 1918,
// fc00::/7), link-local, CGNAT, multicast, broadcast, 0.0.0.0/8, cloud
// metadata, benchmarking, documentation and other special-purpose ranges,
// and any IPv4-mapped, NAT64 or 6to4 form of a refused IPv4 address. An
// address inside one of g.Allow is never refused (for an IPv6 form of an
// IPv4 address, it is enough for Allow to hold either). An IPv6 zone is
// ignored.
func (g *Guard) Refused(a netip.Addr) (reason string, refused bool) {
	if !a.IsValid() {
		return "not an IP address", true
	}
	a = a.WithZone("")
	v4, embedded := embeddedIPv4(a)
	if g.allowed(a) || (embedded && g.allowed(v4)) {
		return "", false
	}
	if embedded {
		if reason, refused := checkRanges(v4); refused {
			return fmt.Sprintf("%s (an IPv6 form of %s)", reason, v4), true
		}
		// The IPv4-mapped form is the IPv4 address itself.
		if a.Is4In6() {
			return "", false
		}
	}
	return checkRanges(a)
}

func checkRanges(a netip.Addr) (string, bool) {
	for _, r := range refusedRanges {
		if r.prefix.Contains(a) {
			return r.reason, true
		}
	}
	return "", false
}

func (g *Guard) allowed(a netip.Addr) bool {
	for _, p := range g.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (g *Guard) resolver() Resolver {
	if g.Resolver != nil {
		return g.Resolver
	}
	return net.DefaultResolver
}

// checkSyntax checks everything about a URL that needs no lookup, and
// returns it parsed.
func (g *Guard) checkSyntax(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, refusef("not a URL")
	}
	if !u.IsAbs() || u.Opaque != "" {
		return nil, refusef("not an absolute URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !g.AllowHTTP {
			return nil, refusef("scheme must be https")
		}
	default:
		if g.AllowHTTP {
			return nil, refusef("scheme must be https or http")
		}
		return nil, refusef("scheme must be https")
	}
	if u.User != nil {
		return nil, refusef("URL must not contain userinfo (credentials)")
	}
	host := u.Hostname()
	if host == "" {
		return nil, refusef("URL has no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, refusef("port %q is not 1 to 65535", p)
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return u, nil
	}
	if err := checkHostName(host); err != nil {
		return nil, err
	}
	return u, nil
}

// checkHostName refuses names that are not plain DNS names, and the ones
// that only ever mean this machine.
func checkHostName(host string) error {
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return refusef("host %q is not a valid DNS name", host)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return refusef("host %q is not a valid DNS name (write an internationalised name in its xn-- form)", host)
			}
		}
	}
	// A name whose last label is numeric is an IPv4 address in a form
	// netip does not parse (127.1, 2130706433, 0x7f.0.0.1) but some
	// resolvers do; top-level domains are never numeric.
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x") {
		return refusef("host %q is not a valid DNS name (a numeric top-level label)", host)
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return refusef("host %q is this machine", host)
	}
	return nil
}

// CheckURL checks an endpoint URL when it is registered: an absolute
// https URL (http too if AllowHTTP), without userinfo, with a host and a
// valid port; an IP-literal host is checked with Refused, and a name is
// resolved with the Guard's Resolver and refused if any of its addresses
// is refused or it has none. Refusals wrap ErrRefusedURL; a lookup that
// fails for another reason than the name not existing (a timeout, a
// SERVFAIL) is returned as it is, so the caller can tell a bad URL from
// a transient failure.
func (g *Guard) CheckURL(ctx context.Context, raw string) error {
	u, err := g.checkSyntax(raw)
	if err != nil {
		return err
	}
	_, err = g.resolve(ctx, "ip", u.Hostname())
	return err
}

// resolve returns host's addresses, refusing the lot if any is refused.
func (g *Guard) resolve(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		if reason, refused := g.Refused(a); refused {
			return nil, refusef("%s is %s", a, reason)
		}
		return []netip.Addr{a}, nil
	}
	addrs, err := g.resolver().LookupNetIP(ctx, network, host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, refusef("host %s does not resolve", host)
		}
		return nil, fmt.Errorf("webhooks: resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, refusef("host %s does not resolve", host)
	}
	for _, a := range addrs {
		if reason, refused := g.Refused(a); refused {
			return nil, refusef("host %s resolves to %s, %s", host, a.WithZone(""), reason)
		}
	}
	return addrs, nil
}

// control is the client's net.Dialer Control: it sees the address the
// socket is about to connect to, whatever resolved it.
func (g *Guard) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refusef("dialled address %q is not an IP address", address)
	}
	if reason, refused := g.Refused(ap.Addr()); refused {
		return refusef("dialled address %s is %s", ap.Addr(), reason)
	}
	return nil
}

// Client returns an HTTP client for webhook requests: its dialer resolves
// names with the Guard's Resolver and refuses to connect if any address
// is refused, and its net.Dialer's Control checks the address actually
// dialled once more, so neither a rebound name nor an IP-literal URL
// reaches a refused address; such errors wrap ErrRefusedURL. It never
// follows redirects (the 3xx is the response), ignores proxy settings in
// the environment, and gives up on a request, body included, after
// timeout (none if timeout <= 0). The client does not check the URL's
// scheme or userinfo; Sender does.
func (g *Guard) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control:   g.control,
	}
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			ipNetwork := "ip"
			switch network {
			case "tcp4":
				ipNetwork = "ip4"
			case "tcp6":
				ipNetwork = "ip6"
			}
			addrs, err := g.resolve(ctx, ipNetwork, host)
			if err != nil {
				return nil, err
			}
			// Each address in turn, as net.Dialer does with a name.
			var errs []error
			for _, a := range addrs {
				conn, err := dialer.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
				if err == nil {
					return conn, nil
				}
				errs = append(errs, err)
				if ctx.Err() != nil {
					break
				}
			}
			return nil, errors.Join(errs...)
		},
		ForceAttemptHTTP2:      true,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           100,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   max(timeout, 0),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

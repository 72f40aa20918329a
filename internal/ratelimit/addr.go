package ratelimit

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// Proxies are the trusted proxies (a load balancer) in front of the
// server: only a request from one of them has its client address read
// from X-Forwarded-For, anyone else's is the address it connected from,
// whatever it sends.
type Proxies []netip.Prefix

// ParseProxies parses a comma-separated list of addresses and CIDR
// prefixes ("10.0.0.0/16, 192.0.2.7"); "" trusts no proxy.
func ParseProxies(s string) (Proxies, error) {
	var out Proxies
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not an address or a CIDR prefix", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func (p Proxies) trusts(a netip.Addr) bool {
	return slices.ContainsFunc(p, func(pre netip.Prefix) bool { return pre.Contains(a) })
}

// ClientAddr returns the address of the client that sent r: the peer's
// address, or, when the peer is a trusted proxy, the right-most address of
// X-Forwarded-For that is not a trusted proxy's (each proxy appends the
// address it was reached from; what a client put before those is its own
// claim). It returns the zero Addr when the peer's address cannot be read.
func (p Proxies) ClientAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	client := peer.Unmap()
	if len(p) == 0 || !p.trusts(client) {
		return client
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return client // no proxy of ours wrote this: stop at the last that did
		}
		client = a.Unmap()
		if !p.trusts(client) {
			return client
		}
	}
	return client
}

// AddrKey is the bucket key of a client address: the address itself, or
// for IPv6 its /64, which one subscriber usually holds whole.
func AddrKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.String()
	}
	return a.String()
}

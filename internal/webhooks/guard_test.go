package webhooks

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// fakeResolver answers from a map; a missing name does not exist.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	addrs, ok := f[strings.TrimSuffix(host, ".")]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, a := range addrs {
		ip := netip.MustParseAddr(a)
		if network == "ip4" && !ip.Is4() || network == "ip6" && !ip.Is6() {
			continue
		}
		out = append(out, ip)
	}
	return out, nil
}

func TestGuardRefused(t *testing.T) {
	strict := &Guard{}
	for _, tc := range []struct {
		addr   string
		reason string // "" for allowed; else a substring of the reason
	}{
		// Public addresses.
		{"93.184.215.14", ""},
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001:80b::200e", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", ""},  // 6to4 of 8.8.8.8
		{"100.63.255.255", ""},   // just below CGNAT
		{"100.128.0.0", ""},      // just above CGNAT
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"198.17.255.255", ""},
		{"198.20.0.0", ""},
		{"223.255.255.255", ""},

		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"0.1.2.3", "this network"},
		{"10.0.0.1", "private"},
		{"10.255.255.255", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"fc00::1", "unique local"},
		{"fd12:3456:789a::1", "unique local"},
		{"169.254.0.1", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"febf::1", "link-local"},
		{"fec0::1", "site-local"},
		{"100.64.0.1", "CGNAT"},
		{"100.127.255.255", "CGNAT"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"ff05::2", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		{"169.254.169.254", "metadata"},
		{"fd00:ec2::254", "metadata"},
		{"100.100.100.200", "metadata"},
		{"198.18.0.1", "benchmarking"},
		{"198.19.255.255", "benchmarking"},
		{"2001:2::1", "benchmarking"},
		{"192.0.2.1", "documentation"},
		{"198.51.100.7", "documentation"},
		{"203.0.113.9", "documentation"},
		{"2001:db8::1", "documentation"},
		{"3fff::1", "documentation"},
		{"192.0.0.8", "IETF"},
		{"192.88.99.1", "6to4 relay"},
		{"100::1", "discard"},
		{"2001:10::1", "ORCHID"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"},
		{"64:ff9b:1::a00:1", "local-use NAT64"},

		// IPv6 forms of refused IPv4 addresses.
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:7f00:1", "loopback"},
		{"::ffff:10.1.2.3", "private"},
		{"::ffff:169.254.169.254", "metadata"},
		{"::127.0.0.1", "loopback"},      // IPv4-compatible
		{"::8.8.8.8", "IPv4-compatible"}, // deprecated even when public
		{"64:ff9b::127.0.0.1", "loopback"},
		{"64:ff9b::a9fe:a9fe", "metadata"},
		{"64:ff9b::c0a8:101", "private"},
		{"2002:7f00:1::", "loopback"},
		{"2002:a9fe:a9fe::1", "metadata"},
		{"2002:c0a8:0101::1", "private"},
	} {
		reason, refused := strict.Refused(netip.MustParseAddr(tc.addr))
		switch {
		case tc.reason == "" && refused:
			t.Errorf("%s refused (%s), want allowed", tc.addr, reason)
		case tc.reason != "" && !refused:
			t.Errorf("%s allowed, want refused as %q", tc.addr, tc.reason)
		case tc.reason != "" && !strings.Contains(reason, tc.reason):
			t.Errorf("%s refused as %q, want %q", tc.addr, reason, tc.reason)
		}
	}

	if _, refused := strict.Refused(netip.Addr{}); !refused {
		t.Error("the zero Addr is allowed")
	}
	if reason, _ := strict.Refused(netip.MustParseAddr("64:ff9b::7f00:1")); !strings.Contains(reason, "127.0.0.1") {
		t.Errorf("NAT64 reason %q does not name the IPv4 address", reason)
	}
}

func TestGuardRefusedAllow(t *testing.T) {
	g := &Guard{Allow: []netip.Prefix{
		netip.MustParsePrefix("10.1.0.0/16"),
		netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("fd00:1::/64"),
	}}
	for _, tc := range []struct {
		addr    string
		allowed bool
	}{
		{"10.1.2.3", true},
		{"10.2.0.1", false},
		{"127.0.0.1", true},
		{"127.0.0.2", false},
		{"::ffff:127.0.0.1", true}, // the mapped form of an allowed address
		{"64:ff9b::a01:203", true}, // NAT64 of 10.1.2.3
		{"fd00:1::5", true},
		{"fd00:2::5", false},
		{"169.254.169.254", false},
		{"8.8.8.8", true},
	} {
		if reason, refused := g.Refused(netip.MustParseAddr(tc.addr)); refused == tc.allowed {
			t.Errorf("%s: refused=%v (%s), want allowed=%v", tc.addr, refused, reason, tc.allowed)
		}
	}
}

func TestGuardCheckURL(t *testing.T) {
	resolver := fakeResolver{
		"hooks.example.com":   {"93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
		"loop.example":        {"127.0.0.1"},
		"mixed.example":       {"93.184.215.14", "10.0.0.7"},
		"mixed6.example":      {"93.184.215.14", "::ffff:192.168.0.1"},
		"metadata.example":    {"169.254.169.254"},
		"internal.corp":       {"10.20.30.40"},
		"empty.example":       {},
		"localhost.example":   {"93.184.215.14"},
		"under_score.example": {"93.184.215.14"},
	}
	strict := &Guard{Resolver: resolver}
	dev := &Guard{Resolver: resolver, AllowHTTP: true, Allow: []netip.Prefix{netip.MustParsePrefix("10.20.0.0/16")}}

	for _, tc := range []struct {
		name   string
		g      *Guard
		url    string
		refuse string // "" when accepted; else a substring of the error
	}{
		{"https name", strict, "https://hooks.example.com/cairn?x=1", ""},
		{"https name, port", strict, "https://hooks.example.com:8443/cairn", ""},
		{"trailing dot", strict, "https://hooks.example.com./cairn", ""},
		{"uppercase scheme", strict, "HTTPS://hooks.example.com/", ""},
		{"underscore label", strict, "https://under_score.example/", ""},
		{"public IPv4 literal", strict, "https://93.184.215.14/", ""},
		{"public IPv6 literal", strict, "https://[2606:4700:4700::1111]:443/", ""},
		{"http when allowed", dev, "http://hooks.example.com/", ""},
		{"allow-listed private", dev, "http://internal.corp/hook", ""},

		{"http", strict, "http://hooks.example.com/", "scheme must be https"},
		{"ftp", strict, "ftp://hooks.example.com/", "scheme must be https"},
		{"ftp with AllowHTTP", dev, "ftp://hooks.example.com/", "scheme must be https or http"},
		{"javascript", strict, "javascript:alert(1)", "absolute"},
		{"relative", strict, "/hooks", "absolute"},
		{"scheme-relative", strict, "//hooks.example.com/", "absolute"},
		{"not a URL", strict, "https://hooks.example.com/%zz", "not a URL"},
		{"userinfo", strict, "https://user:pass@hooks.example.com/", "userinfo"},
		{"user only", strict, "https://user@hooks.example.com/", "userinfo"},
		{"no host", strict, "https:///path", "no host"},
		{"port only", strict, "https://:443/", "no host"},
		{"port 0", strict, "https://hooks.example.com:0/", "port"},
		{"port too big", strict, "https://hooks.example.com:65536/", "port"},
		{"loopback name", strict, "https://loop.example/", "resolves to 127.0.0.1, a loopback address"},
		{"public and private", strict, "https://mixed.example/", "resolves to 10.0.0.7, a private address"},
		{"public and mapped private", strict, "https://mixed6.example/", "192.168.0.1"},
		{"metadata name", strict, "https://metadata.example/latest/meta-data/", "metadata"},
		{"private not allow-listed", strict, "https://internal.corp/", "private"},
		{"unknown name", strict, "https://nxdomain.example/", "does not resolve"},
		{"no addresses", strict, "https://empty.example/", "does not resolve"},
		{"loopback literal", strict, "https://127.0.0.1/", "loopback"},
		{"IPv6 loopback literal", strict, "https://[::1]/", "loopback"},
		{"mapped loopback literal", strict, "https://[::ffff:127.0.0.1]/", "loopback"},
		{"metadata literal", strict, "http://169.254.169.254/", "scheme"},
		{"metadata literal over https", strict, "https://169.254.169.254/", "metadata"},
		{"zoned link-local literal", strict, "https://[fe80::1%25eth0]/", "link-local"},
		{"short IPv4", strict, "https://127.1/", "numeric"},
		{"decimal IPv4", strict, "https://2130706433/", "numeric"},
		{"hex IPv4", strict, "https://0x7f.0.0.1/", "numeric"},
		{"localhost", strict, "https://localhost/", "this machine"},
		{"sub.localhost", strict, "https://a.b.localhost/", "this machine"},
		{"unicode name", strict, "https://bücher.example/", "xn--"},
		{"empty label", strict, "https://hooks..example.com/", "DNS name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.g.CheckURL(t.Context(), tc.url)
			if tc.refuse == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q): %v", tc.url, err)
				}
				return
			}
			if !errors.Is(err, ErrRefusedURL) {
				t.Fatalf("CheckURL(%q) = %v, want ErrRefusedURL", tc.url, err)
			}
			if !strings.Contains(err.Error(), tc.refuse) {
				t.Fatalf("CheckURL(%q) = %q, want it to say %q", tc.url, err, tc.refuse)
			}
		})
	}
}

// A lookup that fails for another reason than the name not existing is
// not a refusal: the caller answers "try again", not "bad URL".
func TestGuardCheckURLLookupFailure(t *testing.T) {
	g := &Guard{Resolver: failingResolver{}}
	err := g.CheckURL(t.Context(), "https://hooks.example.com/")
	if err == nil || errors.Is(err, ErrRefusedURL) {
		t.Fatalf("CheckURL = %v, want a lookup error that is not ErrRefusedURL", err)
	}
}

type failingResolver struct{}

func (failingResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	return nil, &net.DNSError{Err: "server misbehaving", Name: host, IsTemporary: true}
}

package proxy

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// resolver turns a service's configured targets into addresses: as
// written, or, with services.dns, by asking DNS for a name's A and AAAA
// records (or a srv+ target's SRV records) on an interval.
type resolver struct {
	s   *backend
	dns *net.Resolver // nil without services.dns
	// last holds each configured target's addresses from its last
	// successful resolution, kept when a later one fails.
	last [][]address
}

func newResolver(s *backend) *resolver {
	r := &resolver{s: s, last: make([][]address, len(s.cfg.TargetURLs))}
	if d := s.cfg.DNS; d != nil {
		// The pure-Go resolver: the only one that honours Dial, and
		// the same on every platform.
		r.dns = &net.Resolver{PreferGo: true}
		if len(d.Servers) > 0 {
			var next atomic.Uint64
			dialer := &net.Dialer{}
			r.dns.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
				// Each query's attempts go to the servers in turn.
				server := d.Servers[(next.Add(1)-1)%uint64(len(d.Servers))]
				return dialer.DialContext(ctx, network, server)
			}
		}
	}
	return r
}

// resolve returns the addresses of every configured target. A name that
// cannot be resolved keeps the addresses it had (none the first time),
// and is reported in the error.
func (r *resolver) resolve(ctx context.Context) ([]address, error) {
	weights := r.s.cfg.Weights
	var all []address
	var failed []string
	for i, u := range r.s.cfg.TargetURLs {
		w := 1
		if weights != nil {
			w = weights[i]
		}
		switch {
		case r.dns == nil || isIP(u.Hostname()) && !strings.HasPrefix(u.Scheme, "srv+"):
			r.last[i] = []address{{url: u, weight: w}}
		default:
			addrs, err := r.lookup(ctx, u, w)
			if err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", u.Host, err))
			} else {
				r.last[i] = addrs
			}
		}
		all = append(all, r.last[i]...)
	}
	if failed != nil {
		return all, fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return all, nil
}

// lookup resolves one named target.
func (r *resolver) lookup(ctx context.Context, u *url.URL, weight int) ([]address, error) {
	scheme, srv := strings.CutPrefix(u.Scheme, "srv+")
	if !srv {
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[scheme]
		}
		return r.addresses(ctx, scheme, u.Hostname(), port, u.Host, weight)
	}
	_, records, err := r.dns.LookupSRV(ctx, "", "", u.Hostname())
	if err != nil {
		return nil, err
	}
	// Only the most preferred priority serves; the others are its
	// fallbacks, for when it has no record left.
	best := slices.MinFunc(records, func(a, b *net.SRV) int { return cmp.Compare(a.Priority, b.Priority) }).Priority
	var out []address
	for _, rec := range records {
		if rec.Priority != best {
			continue
		}
		name := strings.TrimSuffix(rec.Target, ".")
		port := strconv.Itoa(int(rec.Port))
		w := min(max(int(rec.Weight), 1), 1000)
		if weight == 0 {
			w = 0
		}
		addrs, err := r.addresses(ctx, scheme, name, port, net.JoinHostPort(name, port), w)
		if err != nil {
			return nil, fmt.Errorf("SRV target %s: %w", name, err)
		}
		out = append(out, addrs...)
	}
	return out, nil
}

// addresses resolves name to one address per IP, each dialled at port
// and sent host as its Host.
func (r *resolver) addresses(ctx context.Context, scheme, name, port, host string, weight int) ([]address, error) {
	ips, err := r.dns.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	ips = slices.Compact(ips)
	out := make([]address, len(ips))
	for i, ip := range ips {
		out[i] = address{url: &url.URL{Scheme: scheme, Host: net.JoinHostPort(ip.Unmap().String(), port)}, host: host, weight: weight}
	}
	return out, nil
}

func isIP(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// refresh resolves once, within the DNS timeout, and makes the result
// the service's targets.
func (r *resolver) refresh() {
	ctx, cancel := context.WithTimeout(context.Background(), r.s.cfg.DNS.Timeout.D())
	defer cancel()
	addrs, err := r.resolve(ctx)
	if err != nil {
		r.s.log.Warn("upstream names not resolved; their last addresses are kept", "error", err)
	}
	r.s.update(addrs)
}

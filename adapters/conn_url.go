package adapters

// conn_url.go: the URL forms of ConnConfig.URL.

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisAddrs is what a Redis URL names.
type redisAddrs struct {
	cluster     bool
	list        []string
	clusterOpts *redis.ClusterOptions
}

// parseRedisURL reads the URL forms of ConnConfig.URL.
func parseRedisURL(raw string) (redisAddrs, *redis.Options, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return redisAddrs{}, nil, fmt.Errorf("adapters: parse redis url: no scheme (want redis://, rediss:// or redis+cluster://)")
	}
	cluster := false
	switch scheme {
	case "redis", "rediss":
	case "redis+cluster", "rediss+cluster":
		cluster = true
		scheme = strings.TrimSuffix(scheme, "+cluster")
	default:
		return redisAddrs{}, nil, fmt.Errorf("adapters: parse redis url: unknown scheme %q", scheme)
	}
	// The authority ends at the first / or ? after the credentials.
	authority, tail := rest, ""
	at := strings.LastIndex(rest, "@")
	if i := strings.IndexAny(rest[at+1:], "/?"); i >= 0 {
		authority, tail = rest[:at+1+i], rest[at+1+i:]
	}
	creds, hosts := "", authority
	if at >= 0 {
		creds, hosts = authority[:at+1], authority[at+1:]
	}
	list := strings.Split(hosts, ",")
	if len(list) > 1 {
		cluster = true
	}
	if !cluster {
		o, err := redis.ParseURL(raw)
		if err != nil {
			return redisAddrs{}, nil, fmt.Errorf("adapters: parse redis url: %w", err)
		}
		return redisAddrs{list: []string{o.Addr}}, o, nil
	}
	for i, h := range list {
		if h == "" {
			return redisAddrs{}, nil, fmt.Errorf("adapters: parse redis url: empty address in the cluster list")
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			list[i] = net.JoinHostPort(h, "6379")
		}
	}
	path, query, _ := strings.Cut(tail, "?")
	if path != "" && path != "/" && path != "/0" {
		return redisAddrs{}, nil, fmt.Errorf("adapters: parse redis url: a Redis Cluster has only database 0, not %q", strings.TrimPrefix(path, "/"))
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return redisAddrs{}, nil, fmt.Errorf("adapters: parse redis url: %w", err)
	}
	for _, h := range list[1:] {
		q.Add("addr", h)
	}
	one := scheme + "://" + creds + list[0]
	if len(q) > 0 {
		one += "?" + q.Encode()
	}
	o, err := redis.ParseClusterURL(one)
	if err != nil {
		return redisAddrs{}, nil, fmt.Errorf("adapters: parse redis url: %w", err)
	}
	return redisAddrs{cluster: true, list: list, clusterOpts: o}, nil, nil
}

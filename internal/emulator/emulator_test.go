//go:build integration

package emulator_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/serverless-cdp/cdp/internal/emulator"
)

// TestEmulatorsListenOnLoopbackOnly: DynamoDB Local and kinesis-mock accept connections on
// 127.0.0.1 only. The kernel's socket table must show every listener on their ports bound to
// 127.0.0.1 (not 0.0.0.0 or ::), and a connection to this machine's own non-loopback addresses
// must be refused. (Before, both listened on every interface.)
func TestEmulatorsListenOnLoopbackOnly(t *testing.T) {
	cfg, err := emulator.DefaultConfig(".")
	if err != nil {
		t.Fatal(err)
	}
	cfg.LogDir = t.TempDir()
	if cfg.DynamoDBPort, err = emulator.FreePort(); err != nil {
		t.Fatal(err)
	}
	if cfg.KinesisPort, err = emulator.FreeKinesisPort(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stack, err := emulator.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer stack.Stop()

	for name, port := range map[string]int{"DynamoDB Local": cfg.DynamoDBPort, "kinesis-mock": cfg.KinesisPort, "kinesis-mock TLS": cfg.KinesisPort + 1} {
		addrs := listenAddrs(t, port)
		if len(addrs) == 0 {
			t.Fatalf("%s: nothing listens on port %d", name, port)
		}
		for _, a := range addrs {
			if !a.Equal(net.IPv4(127, 0, 0, 1)) {
				t.Errorf("%s listens on %s:%d, want 127.0.0.1 only", name, a, port)
			}
		}
		for _, ip := range ownNonLoopback(t) {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)), 500*time.Millisecond)
			if err == nil {
				c.Close()
				t.Errorf("%s is reachable on this machine's address %s:%d", name, ip, port)
			}
		}
	}
}

// listenAddrs reads the kernel's TCP socket tables for listeners on port.
func listenAddrs(t *testing.T, port int) []net.IP {
	t.Helper()
	var out []net.IP
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			t.Skipf("no %s: %v", file, err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" { // 0A = LISTEN
				continue
			}
			host, p, ok := strings.Cut(fields[1], ":")
			if n, _ := strconv.ParseInt(p, 16, 32); !ok || int(n) != port {
				continue
			}
			out = append(out, procIP(t, host))
		}
		f.Close()
	}
	return out
}

// procIP decodes an address of /proc/net/tcp{,6}: 32-bit words in host (little-endian) order.
func procIP(t *testing.T, h string) net.IP {
	b, err := hex.DecodeString(h)
	if err != nil || len(b)%4 != 0 {
		t.Fatalf("bad address %q", h)
	}
	for i := 0; i < len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return net.IP(b)
}

func ownNonLoopback(t *testing.T) []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			out = append(out, n.IP)
		}
	}
	if len(out) == 0 {
		t.Log("this machine has no non-loopback IPv4 address; only the socket table is checked")
	}
	return out
}

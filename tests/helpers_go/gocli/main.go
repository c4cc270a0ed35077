// gocli: a Go client for the real-client lab tests, built static (CGO_ENABLED=0)
// with the standard library only. It does what Go programs do by default: dial
// with net.Dialer, whose KeepAlive of 0 means "on, 15 s" (SO_KEEPALIVE,
// TCP_KEEPIDLE 15, TCP_KEEPINTVL 15), or -keepalive -1s to turn it off.
//
//   gocli -addr HOST:PORT [-keepalive DURATION] [-idle DURATION]
//   prints "connected LOCALPORT", idles, writes one line, reads, then
//   "result OK" or "result ECONNRESET" / "result ETIMEDOUT" / "result ERR ...".
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "", "server HOST:PORT")
	keepalive := flag.Duration("keepalive", 0, "net.Dialer.KeepAlive (0: Go's default, 15s; negative: off)")
	idle := flag.Duration("idle", 5*time.Second, "silence before the write")
	flag.Parse()

	d := net.Dialer{KeepAlive: *keepalive, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", *addr)
	if err != nil {
		fmt.Println("result ERR", err)
		os.Exit(1)
	}
	defer conn.Close()
	fmt.Println("connected", conn.LocalAddr().(*net.TCPAddr).Port)
	time.Sleep(*idle)
	_, err = conn.Write([]byte("ping\n"))
	if err == nil {
		conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 64)
		_, err = conn.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = nil // the server holds the connection silently: it survived
		}
	}
	switch {
	case err == nil:
		fmt.Println("result OK")
	case errors.Is(err, syscall.ECONNRESET):
		fmt.Println("result ECONNRESET")
	case errors.Is(err, syscall.ETIMEDOUT):
		fmt.Println("result ETIMEDOUT")
	default:
		fmt.Println("result ERR", err)
	}
}

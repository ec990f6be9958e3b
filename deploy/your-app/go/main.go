// A Go service under corral-agent with nothing but the standard library: it
// serves on the socket the agent passes as fd 3 (systemd socket activation:
// LISTEN_FDS, LISTEN_PID), says READY=1 over $NOTIFY_SOCKET, and on SIGTERM
// stops accepting, finishes the requests in flight and exits 0.
//
//	corral-agent --listen=tcp://0.0.0.0:8080 -- ./server
//	PORT=8000 ./server        # alone, on its own port
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// listener takes fd 3 from the agent, or binds $PORT when run alone.
func listener() (net.Listener, error) {
	n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) && n >= 1 {
		return net.FileListener(os.NewFile(3, "corral")) // dups fd 3; the original stays open
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8000"
	}
	return net.Listen("tcp", ":"+port)
}

// notify is sd_notify(3): one datagram to $NOTIFY_SOCKET. The agent's is
// abstract ("@name"); Go's net package spells abstract addresses with "@"
// itself, so the name goes as it is (a "\x00" prefix would add a trailing
// NUL to the address and miss the socket).
func notify(state string) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		log.Printf("notify %s: %v", state, err)
		return
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		log.Printf("notify %s: %v", state, err)
	}
}

func main() {
	worker := os.Getenv("CORRAL_WORKER_ID")
	if worker == "" {
		worker = "standalone"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// ?sleep_ms=N makes a slow request, for trying a drain.
		if ms, err := strconv.Atoi(r.URL.Query().Get("sleep_ms")); err == nil && ms > 0 {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "hello from go worker %s (pid %d)\n", worker, os.Getpid())
	})

	ln, err := listener()
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT) // before READY: no window of default handling
	drained := make(chan struct{})
	go func() {
		<-sig
		notify("STOPPING=1")
		// Stop accepting, close idle keep-alive connections, wait for the
		// requests in flight; the bound stays under the agent's --stop-timeout.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Printf("shutdown: %v", err)
		}
		close(drained)
	}()
	notify("READY=1")
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
	<-drained // Serve returns at once on Shutdown; the requests in flight finish first
}

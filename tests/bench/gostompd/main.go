// Command gostompd serves go-stomp's reference STOMP server
// (github.com/go-stomp/stomp/v3/server) on one TCP address, so the
// benchmark scripts in tests/bench can compare Stampede against it.
//
// go-stomp's server keeps everything in memory, ignores persistence and
// authentication, and treats every destination that does not start with
// /queue as a topic.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-stomp/stomp/v3/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:61615", "TCP address to serve STOMP on")
	heartbeat := flag.Duration("heartbeat", time.Minute, "heart-beat the server asks clients for (go-stomp's default is one minute)")
	verbose := flag.Bool("v", false, "log every connection the server closes (it logs those as errors)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "gostompd: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("gostompd: %v", err)
	}
	srv := &server.Server{HeartBeat: *heartbeat, Log: logger{verbose: *verbose}}
	log.Printf("gostompd: go-stomp server on %s", ln.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		// go-stomp's server has no shutdown: exiting drops the client
		// connections, which is all a benchmark run needs.
		log.Printf("gostompd: %v, exiting", <-sig)
		os.Exit(0)
	}()
	if err := srv.Serve(ln); err != nil {
		log.Fatalf("gostompd: %v", err)
	}
}

// logger drops go-stomp's per-connection chatter unless -v is given: at
// 15,000 connections, one log line per closed connection is noise that
// also costs the server time.
type logger struct{ verbose bool }

func (l logger) out(level, msg string) {
	if l.verbose || level == "WARN" {
		log.Printf("%s: %s", level, msg)
	}
}

func (l logger) Debugf(format string, v ...interface{})   { l.Debug(fmt.Sprintf(format, v...)) }
func (l logger) Infof(format string, v ...interface{})    { l.Info(fmt.Sprintf(format, v...)) }
func (l logger) Warningf(format string, v ...interface{}) { l.Warning(fmt.Sprintf(format, v...)) }
func (l logger) Errorf(format string, v ...interface{})   { l.Error(fmt.Sprintf(format, v...)) }
func (l logger) Debug(msg string)                         {}
func (l logger) Info(msg string)                          { l.out("INFO", msg) }
func (l logger) Warning(msg string)                       { l.out("WARN", msg) }
func (l logger) Error(msg string)                         { l.out("ERROR", msg) }

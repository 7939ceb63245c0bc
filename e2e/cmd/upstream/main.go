// Command upstream runs the zitadel example OpenID provider configured for
// devicegate, for trying devicegate against a real provider by hand:
//
//	go run ./cmd/upstream -redirect http://127.0.0.1:8080/api/callback
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/devicegate/devicegate/e2e/op"
)

func main() {
	redirect := flag.String("redirect", "http://127.0.0.1:8080/api/callback", "devicegate's callback URL")
	flag.Parse()
	s, err := op.Start("devicegate", *redirect)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer s.Close()
	fmt.Printf("issuer %s\nclient %s / %s\nuser %s / %s\n", s.Issuer, "devicegate", op.ClientSecret, op.Username, op.Password)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt)
	<-stop
}

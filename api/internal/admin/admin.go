// Package admin holds the operator's commands of the devicegate binary
// (devicegate devices …), run against the same settings and store as the
// server. It reads and removes refresh-token bindings through package
// deviceflow and never prints a token, a token hash or a binding key: a
// device is named by a short id derived from its binding key under a
// label of its own (deviceflow.Device.ID).
package admin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/devicegate/devicegate/api/internal/deviceflow"
	"github.com/devicegate/devicegate/api/internal/upstream"
)

// Options is what the devices command needs from the wiring.
type Options struct {
	Service *deviceflow.Service
	// ClientName is a device client's display name ("" if unknown).
	ClientName func(clientID string) string
	Out        io.Writer
}

// DevicesUsage says how to call the devices command.
const DevicesUsage = `Usage:
  devicegate devices                    list every device signed in (every live refresh-token binding)
  devicegate devices disconnect ID      remove one; its next refresh is invalid_grant and it must sign in again

Reads the same DEVICEGATE_* settings and store as the server. With the local bbolt store, stop the
server first (a bbolt file is open to one process at a time); with Cosmos DB it can run alongside.
`

// Devices runs "devicegate devices" with the arguments after "devices".
func Devices(ctx context.Context, args []string, o Options) error {
	fs := flag.NewFlagSet("devicegate devices", flag.ContinueOnError)
	fs.SetOutput(o.Out)
	fs.Usage = func() { fmt.Fprint(o.Out, DevicesUsage) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	switch rest := fs.Args(); {
	case len(rest) == 0 || (len(rest) == 1 && rest[0] == "list"):
		return list(ctx, o)
	case len(rest) == 2 && rest[0] == "disconnect":
		d, err := o.Service.Disconnect(ctx, rest[1])
		if errors.Is(err, deviceflow.ErrNoSuchDevice) {
			return fmt.Errorf("no device has id %q; run devicegate devices to list them (a device that refreshed with a rotating provider has a new id)", rest[1])
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Out, "Disconnected %s (%s at %s). Its next refresh is refused; it must sign in again.\n"+
			"The refresh token itself stays valid at the provider until it lapses there (devicegate keeps only its hash).\n",
			d.ID, name(o, d.ClientID), provider(d.Upstream))
		return nil
	default:
		fs.Usage()
		return errors.New("devices: unknown arguments")
	}
}

func list(ctx context.Context, o Options) error {
	devices, err := o.Service.Devices(ctx)
	if err != nil {
		return err
	}
	if len(devices) == 0 {
		fmt.Fprintln(o.Out, "No device is signed in.")
		return nil
	}
	tw := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tDEVICE\tPROVIDER\tSCOPES\tSIGNED IN\tLAST REFRESHED\tEXPIRES")
	for _, d := range devices {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, name(o, d.ClientID), provider(d.Upstream),
			strings.Join(d.Scopes, " "), when(d.SignedIn, "unknown"), when(d.Refreshed, refreshedUnknown(d)), when(d.ExpiresAt, "-"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "%d device(s). Times are UTC; LAST REFRESHED is recorded up to %s late. \"unknown\": bound before devicegate recorded it.\n",
		len(devices), deviceflow.RefreshedGranularity)
	return nil
}

// refreshedUnknown is what LAST REFRESHED shows when none is recorded: a
// binding with a sign-in time has not been refreshed (or not recorded
// yet); one without predates the fields.
func refreshedUnknown(d deviceflow.Device) string {
	if d.SignedIn.IsZero() {
		return "unknown"
	}
	return "not yet"
}

func when(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// name is a client's display name with its id.
func name(o Options, clientID string) string {
	if o.ClientName != nil {
		if n := o.ClientName(clientID); n != "" {
			return n + " (" + clientID + ")"
		}
	}
	return clientID
}

// provider is the host of the token endpoint in a binding's upstream
// identity ("<token URL> <client id>"), the provider's name without a
// network call.
func provider(identity string) string {
	tokenURL, _, _ := strings.Cut(identity, " ")
	return upstream.HostOf(tokenURL)
}

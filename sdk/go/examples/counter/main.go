// Command counter is the smallest useful Lintel plugin: it counts each
// client's requests in shared state and tells the client its count.
package main

import (
	"strconv"
	"time"

	lintel "github.com/lintelhq/lintel/sdk/go"
)

func main() {}

func init() {
	// Nothing is kept between the phases, so the host need not hold an
	// instance of the plugin for the whole upstream call.
	lintel.Declare(lintel.Stateless)
	lintel.HandleResponse(func(req lintel.Request, resp lintel.Response) {
		ip, _ := lintel.Property("client_ip")
		n, err := lintel.StateIncr("requests:"+ip, 1, time.Hour)
		if err != nil {
			lintel.Warn("counter unavailable", "error", err.Error())
			return
		}
		resp.Header().Set("X-Request-Count", strconv.FormatInt(n, 10))
	})
}

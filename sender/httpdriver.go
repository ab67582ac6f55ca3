package sender

import (
	"fmt"
	"net/http"

	"github.com/dropgate/dropgate/config"
)

func newHTTPDriver(field string, cc *config.Channel, client *http.Client) (Driver, error) {
	return nil, fmt.Errorf("%s.type: http channels are not supported yet", field)
}

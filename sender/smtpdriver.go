package sender

import (
	"fmt"

	"github.com/dropgate/dropgate/config"
)

func newSMTPDriver(field string, cc *config.Channel) (Driver, error) {
	return nil, fmt.Errorf("%s.type: smtp channels are not supported yet", field)
}

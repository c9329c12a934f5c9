package cli

import "errors"

var errorsIs = errors.Is

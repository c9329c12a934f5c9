package oneline

import "strings"

// Error returns err's text on one line: libp2p's "\n  * " list items become
// "; " and every run of white space one space. err must not be nil.
func Error(err error) string {
	s := strings.ReplaceAll(err.Error(), "\n  * ", "; ")
	return strings.Join(strings.Fields(s), " ")
}

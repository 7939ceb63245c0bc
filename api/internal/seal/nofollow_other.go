//go:build !unix

package seal

// oNoFollow is unavailable here; ReadKeyFile still refuses a link it can
// see with Lstat.
const oNoFollow = 0

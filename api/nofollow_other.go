//go:build !unix

package main

// oNoFollow is unavailable here; readKeyFile still refuses a link it can
// see with Lstat.
const oNoFollow = 0

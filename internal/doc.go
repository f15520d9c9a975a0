// Package internal holds fleetsync's shared helpers; each subpackage has one job.
package internal

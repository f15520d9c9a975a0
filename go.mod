module github.com/fleetsync/fleetsync

go 1.24.0

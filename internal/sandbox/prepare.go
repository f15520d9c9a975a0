package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// MongoJavaServerVersion pins the test server. Newer releases change behaviour we document in
// shared/DESIGN.md (oplog format, missing commands), so an upgrade is a deliberate, tested change.
const MongoJavaServerVersion = "1.47.0"

// dependencyPluginVersion pins the Maven plugin that copies the jars, so a first run on a fresh machine
// does not depend on whatever "latest" resolves to that day.
const dependencyPluginVersion = "3.8.1"

//go:embed launcher/SandboxLauncher.java
var launcherSource []byte

var pomTemplate = `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.fleetsync</groupId>
  <artifactId>sandbox-deps</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>de.bwaldvogel</groupId>
      <artifactId>mongo-java-server</artifactId>
      <version>%s</version>
    </dependency>
  </dependencies>
  <build><plugins><plugin>
    <groupId>org.apache.maven.plugins</groupId>
    <artifactId>maven-dependency-plugin</artifactId>
    <version>%s</version>
  </plugin></plugins></build>
</project>
`

// MissingToolError says which program the sandbox needs and how to get it.
type MissingToolError struct {
	Tool, Install string
}

func (e *MissingToolError) Error() string {
	return fmt.Sprintf("the sandbox needs %s, which is not on PATH: %s", e.Tool, e.Install)
}

// DefaultCacheDir is where the server jars and the compiled launcher are kept between runs:
// $FLEETSYNC_CACHE_DIR, else the user's cache directory.
func DefaultCacheDir() string {
	if dir := os.Getenv("FLEETSYNC_CACHE_DIR"); dir != "" {
		return dir
	}
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "fleetsync")
	}
	return filepath.Join(os.TempDir(), "fleetsync-cache")
}

// Prepare makes sure the server jars and the compiled launcher are in cacheDir and returns the Java
// classpath to run the launcher with. The first call on a machine fetches the jars with Maven (a few
// seconds); later calls only check files. Concurrent callers, such as test binaries that go test runs
// in parallel, serialise on a lock file, and every artefact is built in a temporary directory and
// renamed into place, so an interrupted run never leaves a half-written cache behind.
func Prepare(ctx context.Context, cacheDir string, progress func(string)) (classpath string, err error) {
	if _, err := exec.LookPath("java"); err != nil {
		return "", &MissingToolError{"java", "install a Java 17+ JDK (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless)"}
	}
	if _, err := exec.LookPath("javac"); err != nil {
		return "", &MissingToolError{"javac", "install a Java 17+ JDK, not only a JRE (Debian/Ubuntu: apt-get install openjdk-17-jdk-headless)"}
	}
	base := filepath.Join(cacheDir, "sandbox", "mongo-java-server-"+MongoJavaServerVersion)
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("sandbox cache %s: %w", base, err)
	}
	unlock, err := lockFile(filepath.Join(base, ".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()

	libDir := filepath.Join(base, "lib")
	if _, err := os.Stat(libDir); errors.Is(err, os.ErrNotExist) {
		if progress != nil {
			progress(fmt.Sprintf("fetching mongo-java-server %s with Maven into %s (first use only)", MongoJavaServerVersion, base))
		}
		if err := fetchJars(ctx, base, libDir); err != nil {
			return "", err
		}
	}
	// The launcher is compiled per content hash, so editing it never runs a stale class.
	sum := sha256.Sum256(launcherSource)
	classDir := filepath.Join(base, "launcher-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(classDir); errors.Is(err, os.ErrNotExist) {
		if err := compileLauncher(ctx, base, libDir, classDir); err != nil {
			return "", err
		}
	}
	return filepath.Join(libDir, "*") + string(os.PathListSeparator) + classDir, nil
}

func fetchJars(ctx context.Context, base, libDir string) error {
	if _, err := exec.LookPath("mvn"); err != nil {
		return &MissingToolError{"mvn", "install Apache Maven (Debian/Ubuntu: apt-get install maven); it fetches the test server once"}
	}
	work, err := os.MkdirTemp(base, "fetch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	pom := filepath.Join(work, "pom.xml")
	if err := os.WriteFile(pom, []byte(fmt.Sprintf(pomTemplate, MongoJavaServerVersion, dependencyPluginVersion)), 0o644); err != nil {
		return err
	}
	out := filepath.Join(work, "lib")
	cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "-f", pom, "dependency:copy-dependencies",
		"-DincludeScope=runtime", "-DoutputDirectory="+out)
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("maven could not fetch mongo-java-server %s (is Maven Central reachable?): %v: %s",
			MongoJavaServerVersion, err, lastLines(output, 5))
	}
	return os.Rename(out, libDir)
}

func compileLauncher(ctx context.Context, base, libDir, classDir string) error {
	work, err := os.MkdirTemp(base, "javac-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	src := filepath.Join(work, "SandboxLauncher.java")
	if err := os.WriteFile(src, launcherSource, 0o644); err != nil {
		return err
	}
	out := filepath.Join(work, "classes")
	cmd := exec.CommandContext(ctx, "javac", "-nowarn", "-d", out, "-cp", filepath.Join(libDir, "*"), src)
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("compiling the sandbox launcher failed: %v: %s", err, lastLines(output, 5))
	}
	return os.Rename(out, classDir)
}

// lockFile takes an exclusive advisory lock; the returned func releases it.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("sandbox cache lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("sandbox cache lock: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(bytes.ToValidUTF8(b, nil))), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

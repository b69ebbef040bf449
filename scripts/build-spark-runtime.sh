#!/usr/bin/env bash
# Build the jars a local SparkSession needs to run Iceberg 1.10 against IceBridge's catalogs, into
# build/spark-jars/ (printed on the last line). Idempotent: installs and builds only what is missing.
#
# - Iceberg runtime + extensions for Spark 3.5 / Scala 2.12: taken out of the PyPI wheel
#   snowpark-connect-deps-iceberg (the only registry-served copy of these jars).
# - That runtime jar lacks Iceberg's relocated Jackson (org.apache.iceberg.shaded.com.fasterxml.jackson),
#   so Debian's Jackson jars are merged and relocated here with jarjar.
# - JDBC drivers for the catalogs Spark shares with PyIceberg: PostgreSQL and SQLite (Debian).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"
VENV="${VENV:-.venv}"
WHEEL_VERSION="1.0.3"
ICEBERG_VERSION="1.10.2"
SCALA="2.12"
CACHE="$ROOT/build/spark-cache"
OUT="$ROOT/build/spark-jars"
JACKSON_JAR="iceberg-shaded-jackson-2.jar"
DEBIAN_PACKAGES=(
    libjackson2-core-java libjackson2-databind-java libjackson2-annotations-java libjarjar-java
    libpostgresql-jdbc-java libxerial-sqlite-jdbc-java
)

say() { echo "build-spark-runtime: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
[ -x "$VENV/bin/pip" ] || die "$VENV/bin/pip not found; run 'make install' first"

# --- Debian packages (apt-get update only when something must be installed) -------------------
missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} with apt-get"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
command -v java >/dev/null 2>&1 || die "java is not on PATH after installing openjdk-17-jre-headless"

mkdir -p "$CACHE" "$OUT"

# --- Iceberg runtime and extensions out of the wheel ------------------------------------------
runtime="iceberg-spark-runtime-3.5_${SCALA}-${ICEBERG_VERSION}.jar"
extensions="iceberg-spark-extensions-3.5_${SCALA}-${ICEBERG_VERSION}.jar"
if [ ! -s "$OUT/$runtime" ] || [ ! -s "$OUT/$extensions" ]; then
    wheel="$(ls "$CACHE"/snowpark_connect_deps_iceberg-"$WHEEL_VERSION"-*.whl 2>/dev/null | head -1 || true)"
    if [ -z "$wheel" ]; then
        say "downloading snowpark-connect-deps-iceberg==$WHEEL_VERSION with pip"
        "$VENV/bin/pip" download --quiet --no-deps --dest "$CACHE" "snowpark-connect-deps-iceberg==$WHEEL_VERSION"
        wheel="$(ls "$CACHE"/snowpark_connect_deps_iceberg-"$WHEEL_VERSION"-*.whl | head -1)"
    fi
    "$VENV/bin/python" - "$wheel" "$OUT" "$runtime" "$extensions" <<'PY'
import shutil
import sys
import zipfile
from pathlib import Path

wheel, out, *names = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive:
    for name in names:
        member = f"snowpark_connect_deps_iceberg/jars/{name}"
        tmp = Path(out) / f".{name}.part"
        with archive.open(member) as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        tmp.rename(Path(out) / name)
PY
    say "extracted $runtime and $extensions"
fi

# --- Jackson relocated the way Iceberg's own build shades it ----------------------------------
if [ ! -s "$OUT/$JACKSON_JAR" ]; then
    work="$(mktemp -d "$CACHE/jackson.XXXXXX")"
    trap 'rm -rf "$work"' EXIT
    # multi-release class copies and module descriptors would escape relocation; Iceberg drops them too
    "$VENV/bin/python" - "$work/merged.jar" \
        /usr/share/java/jackson-core.jar /usr/share/java/jackson-databind.jar /usr/share/java/jackson-annotations.jar <<'PY'
import sys
import zipfile

target, *sources = sys.argv[1:]
seen: set[str] = set()
with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
    for source in sources:
        with zipfile.ZipFile(source) as jar:
            for info in jar.infolist():
                name = info.filename
                if name.startswith("META-INF/versions/") or name.endswith("module-info.class"):
                    continue
                if name.startswith("META-INF/") and not name.startswith("META-INF/services/"):
                    continue
                if name in seen or info.is_dir():
                    continue
                seen.add(name)
                out.writestr(name, jar.read(name))
PY
    echo 'rule com.fasterxml.jackson.** org.apache.iceberg.shaded.com.fasterxml.jackson.@1' >"$work/rules.txt"
    java -jar /usr/share/java/jarjar.jar process "$work/rules.txt" "$work/merged.jar" "$work/relocated.jar"
    "$VENV/bin/python" - "$work/relocated.jar" <<'PY'
import sys
import zipfile

names = zipfile.ZipFile(sys.argv[1]).namelist()
wanted = "org/apache/iceberg/shaded/com/fasterxml/jackson/databind/ObjectMapper.class"
if wanted not in names or any(n.startswith("com/fasterxml/") for n in names):
    sys.exit(f"relocation failed: {wanted} missing or unrelocated classes left in {sys.argv[1]}")
PY
    mv "$work/relocated.jar" "$OUT/$JACKSON_JAR"
    say "built $JACKSON_JAR"
fi

# --- JDBC drivers for the shared catalogs ------------------------------------------------------
install -m 0644 "$(readlink -f /usr/share/java/postgresql.jar)" "$OUT/postgresql-jdbc.jar"
install -m 0644 "$(readlink -f /usr/share/java/sqlite-jdbc.jar)" "$OUT/sqlite-jdbc.jar"

echo "$OUT"

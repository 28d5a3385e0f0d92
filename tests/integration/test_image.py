"""Disk image tests: the image `make image` writes boots under OVMF and SeaBIOS.

scripts/mkimage builds the images straight into pytest's temporary folders
(never build/APP, so users' images are left alone): hello with the command
line `-- from 'the image' --exit 3` kept in ringlet/cmdline.txt, and blktool
with `-- info sha256 vda 0 1M`. Each boot checks hello's argv lines (they can
only come from the file on the ESP) and the exit status.

- UEFI (OVMF, q35): the image as virtio-blk and as SATA; the qcow2 copy.
- BIOS (SeaBIOS, GRUB): pc with virtio-blk and IDE, q35 with SATA; the qcow2.
- The disk OVMF booted from still works in the kernel: blktool's checksum of
  the first MiB of vda equals the image file's.
- A new cmdline.txt, written with mtools, changes argv on the next boot; one of
  5 KiB is cut at 2047 bytes and a NUL ends it (BIOS: GRUB's multiboot2 module).
- Broken images (kernel file missing, kernel file truncated, partition type
  changed, image cut short inside the kernel file) give the message listed in
  docs/images.md and stop the guest, or still boot; never a hang.
- The libvirt domain XML validates (virt-xml-validate), and a real libvirtd,
  started by the test in a mount namespace of its own, boots the image; and
  the blktool image with its disk on a virtio-scsi controller, where blktool
  reads it as sda.

OVMF takes 4-10 s per boot under TCG, so there are few OVMF boots. A failed
boot waits 10 s for a key before it powers off.
"""

import hashlib
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time

import pytest

from ringlet import build_app, root, run_guest

MiB = 1 << 20
ESP_OFFSET = 2 * MiB            # where mkimage puts the EFI System Partition
HELLO_ARGS = ["from", "the image", "--exit", "3"]
HELLO_CMDLINE = "-- from 'the image' --exit 3"
# `debug` makes the kernel list each BAR it maps: OVMF puts the virtio-blk
# device's 64-bit BAR far above 4 GiB.
BLKTOOL_CMDLINE = "debug -- info sha256 vda 0 1M"
BOOT_TIMEOUT = 60               # OVMF under TCG: 4-10 s, more on a busy host
FAIL_TIMEOUT = 90               # the loader waits 10 s, then powers off

# What the loaders print on the console (docs/images.md, "When something is wrong").
EFI_FAILED = "ringlet-efi: boot failed"
EFI_POWER_OFF = "ringlet-efi: press a key to return to the firmware; powering off in 10 s"
GRUB_FAILED = "ringlet-grub: boot failed"
GRUB_POWER_OFF = "ringlet-grub: powering off in 10 seconds"
NO_STATUS = 125                 # scripts/run: the guest stopped without an exit status


# ---- images ---------------------------------------------------------------------

def run_tool(cmd, **kw):
    """Run a host tool; fail the test with its output if it fails."""
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, **kw)
    assert done.returncode == 0, "%s failed (status %d):\n%s" % (
        " ".join(map(str, cmd)), done.returncode, done.stdout)
    return done.stdout


def mkimage(kernel, cmdline, out, qcow2=None):
    cmd = [os.path.join(root(), "scripts", "mkimage"),
           "--kernel", os.path.join(root(), "build", kernel, "ringlet.elf"),
           "--efi", os.path.join(root(), "build", "efi", "BOOTX64.EFI"),
           "--cmdline", cmdline, "--out", str(out)]
    if qcow2:
        cmd += ["--qcow2", str(qcow2)]
    run_tool(cmd, cwd=root())


class Images:
    """The images of this module, built once."""

    def __init__(self, folder):
        self.folder = folder
        self.hello = folder / "hello.img"
        self.hello_qcow2 = folder / "hello.qcow2"
        self.blktool = folder / "blktool.img"
        mkimage("hello", HELLO_CMDLINE, self.hello, self.hello_qcow2)
        mkimage("blktool", BLKTOOL_CMDLINE, self.blktool)

    def copy(self, tmp_path, name="hello"):
        """A private copy of an image that a test may change."""
        copy = tmp_path / ("%s.img" % name)
        run_tool(["cp", "--sparse=always", str(getattr(self, name)), str(copy)])
        return copy


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    build_app("hello")
    build_app("blktool")
    run_tool(["make", "-s", "efi"], cwd=root())
    return Images(tmp_path_factory.mktemp("images"))


# ---- booting --------------------------------------------------------------------

def console(result):
    """The guest's console with CRLF turned into LF."""
    return result.output.replace("\r\n", "\n")


def boot(image, firmware, machine=None, bus="virtio", timeout=BOOT_TIMEOUT):
    """Boot a disk image through firmware; the command line is the image's own."""
    machine = machine or ("q35" if firmware == "uefi" else "pc")
    return run_guest(str(image), machine=machine, timeout=timeout,
                     extra=["--firmware", firmware, "--image-bus", bus])


def expected_argv(args):
    """hello's argc and argv lines for these application arguments."""
    argv = ["hello"] + list(args)
    return "argc=%d\n" % len(argv) + "".join(
        "argv[%d]=[%s]\n" % (i, a) for i, a in enumerate(argv))


def assert_hello(result, firmware, args=HELLO_ARGS, status=3):
    """hello came up through this firmware, printed these argv and exited with status."""
    out = console(result)
    loader = "ringlet-efi: loading" if firmware == "uefi" else "ringlet-grub: loading"
    via = "Ringlet via UEFI" if firmware == "uefi" else "Ringlet via multiboot2"
    assert loader in out, out
    assert via in out, out
    assert "Hello from Ringlet!\n" in out, out
    assert expected_argv(args) in out, out
    assert "exit status: %d\n" % status in out, out
    assert result.status == status, out + result.launcher_stderr


def assert_failed(result, firmware, message):
    """The loader said `message`, then stopped the guest (no hang, no kernel)."""
    out = console(result)
    assert message in out, out
    if firmware == "uefi":
        assert EFI_FAILED in out and EFI_POWER_OFF in out, out
    else:
        assert GRUB_FAILED in out and GRUB_POWER_OFF in out, out
    assert "Hello from Ringlet!" not in out, out
    assert result.status == NO_STATUS, out + result.launcher_stderr


# ---- booting the image --------------------------------------------------------------

@pytest.mark.parametrize("bus", ["virtio", "sata"])
def test_uefi_boot(images, bus):
    assert_hello(boot(images.hello, "uefi", "q35", bus), "uefi")


@pytest.mark.parametrize("machine,bus", [("pc", "virtio"), ("pc", "ide"), ("q35", "sata")])
def test_bios_boot(images, machine, bus):
    assert_hello(boot(images.hello, "bios", machine, bus), "bios")


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_qcow2_boot(images, firmware):
    assert_hello(boot(images.hello_qcow2, firmware), firmware)


def test_disk_used_by_firmware_works(images):
    """OVMF read the kernel from this virtio-blk disk; the kernel resets it and reads it."""
    with open(images.blktool, "rb") as f:
        expected = hashlib.sha256(f.read(MiB)).hexdigest()
    result = boot(images.blktool, "uefi")
    out = console(result)
    assert "ringlet-efi: loading" in out, out
    m = re.search(r"^sha256 vda 0 %d ([0-9a-f]{64})$" % MiB, out, re.M)
    assert m, "no sha256 line:\n" + out
    assert m.group(1) == expected, out
    assert result.status == 0, out + result.launcher_stderr
    # The device's registers sit in a 64-bit BAR above 4 GiB (OVMF's choice),
    # which the kernel mapped uncached on demand: the reads above went there.
    bars = [int(a, 16) for a in re.findall(r"BAR\d 0x([0-9a-f]+), \d+ KiB, 64-bit memory", out)]
    assert bars and max(bars) >= 1 << 32, out


def test_cmdline_file_changed_without_rebuilding(images, tmp_path):
    img = images.copy(tmp_path)
    assert_hello(boot(img, "bios"), "bios")

    new = tmp_path / "cmdline.txt"
    new.write_text("-- changed 'two words' --exit 5\n")
    run_tool(["mcopy", "-o", "-i", "%s@@%d" % (img, ESP_OFFSET),
              str(new), "::/ringlet/cmdline.txt"])
    assert_hello(boot(img, "bios"), "bios", ["changed", "two words", "--exit", "5"], 5)


def test_hostile_cmdline_file_bios(images, tmp_path):
    """cmdline.txt is a file anyone with the image can edit; GRUB hands it over as a
    multiboot2 module. Only its first 2047 bytes are read (BOOT_CMDLINE_MAX - 1), a NUL
    ends it, an empty one is an empty command line; none stops the boot (boot/bootparse.c, tests/unit/test_bootinfo.c)."""
    img = images.copy(tmp_path)
    new = tmp_path / "cmdline.txt"
    new.write_bytes(b"-- first " + b"x" * 5000 + b" --exit 4\n")
    run_tool(["mcopy", "-o", "-i", "%s@@%d" % (img, ESP_OFFSET),
              str(new), "::/ringlet/cmdline.txt"])
    assert_hello(boot(img, "bios"), "bios", ["first", "x" * (2047 - len("-- first "))], 0)

    new.write_bytes(b"-- before nul --exit 6\0 after --exit 7\n")
    run_tool(["mcopy", "-o", "-i", "%s@@%d" % (img, ESP_OFFSET),
              str(new), "::/ringlet/cmdline.txt"])
    assert_hello(boot(img, "bios"), "bios", ["before", "nul", "--exit", "6"], 6)

    new.write_bytes(b"")                    # an empty module: an empty command line
    run_tool(["mcopy", "-o", "-i", "%s@@%d" % (img, ESP_OFFSET),
              str(new), "::/ringlet/cmdline.txt"])
    assert_hello(boot(img, "bios"), "bios", [], 0)


# ---- broken images ----------------------------------------------------------------

def first_segment_middle(kernel):
    """A byte count that ends the ELF file in the middle of its first PT_LOAD segment."""
    with open(kernel, "rb") as f:
        data = f.read()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and p_filesz > 0:
            return p_offset + p_filesz // 2
    raise AssertionError("%s has no PT_LOAD segment" % kernel)


@pytest.mark.parametrize("firmware,message", [
    ("uefi", r"cannot read \ringlet\kernel.elf from the EFI System Partition: Not Found"),
    ("bios", "error: file `/ringlet/kernel.elf' not found."),
], ids=["uefi", "bios"])
def test_missing_kernel_file(images, tmp_path, firmware, message):
    img = images.copy(tmp_path)
    run_tool(["mdel", "-i", "%s@@%d" % (img, ESP_OFFSET), "::/ringlet/kernel.elf"])
    assert_failed(boot(img, firmware, timeout=FAIL_TIMEOUT), firmware, message)


@pytest.mark.parametrize("firmware", ["uefi", "bios"])
def test_truncated_kernel_file(images, tmp_path, firmware):
    """The kernel file ends inside its first segment (a half-copied kernel)."""
    kernel = os.path.join(root(), "build", "hello", "ringlet.elf")
    size = first_segment_middle(kernel)
    short = tmp_path / "kernel.elf"
    with open(kernel, "rb") as f:
        short.write_bytes(f.read(size))
    img = images.copy(tmp_path)
    run_tool(["mcopy", "-o", "-i", "%s@@%d" % (img, ESP_OFFSET),
              str(short), "::/ringlet/kernel.elf"])

    result = boot(img, firmware, timeout=FAIL_TIMEOUT)
    if firmware == "uefi":
        out = console(result)
        assert re.search(r"\\ringlet\\kernel\.elf: segment 0 lies outside the file "
                         r"\(offset \d+ \+ \d+ > %d bytes; truncated\?\)" % size, out), out
        assert_failed(result, firmware, "lies outside the file")
    else:
        assert_failed(result, firmware, "error: premature end of file /ringlet/kernel.elf.")


@pytest.mark.parametrize("firmware", ["uefi", "bios"])
def test_wrong_partition_type_still_boots(images, tmp_path, firmware):
    """ESP typed as a Linux partition: OVMF reads FAT anywhere, GRUB finds it by serial."""
    img = images.copy(tmp_path)
    run_tool(["sgdisk", "-t", "2:8300", str(img)])
    assert "8300" in run_tool(["sgdisk", "-p", str(img)])
    assert_hello(boot(img, firmware), firmware)


@pytest.mark.parametrize("firmware,message", [
    ("uefi", r"cannot read \ringlet\kernel.elf from the EFI System Partition: Invalid Parameter"),
    ("bios", "error: attempt to read or write outside of disk `hd0'."),
], ids=["uefi", "bios"])
def test_image_cut_inside_the_kernel_file(images, tmp_path, firmware, message):
    """The image file ends in the middle of kernel.elf (an interrupted copy or download)."""
    img = images.copy(tmp_path)
    kernel = os.path.join(root(), "build", "hello", "ringlet.elf")
    with open(kernel, "rb") as f:
        head = f.read(4096)
    with open(img, "rb") as f:
        at = f.read().find(head, ESP_OFFSET)
    assert at > ESP_OFFSET, "kernel.elf not found in the image"
    os.truncate(img, at + 64 * 1024)        # sector-aligned: FAT clusters are
    assert_failed(boot(img, firmware, timeout=FAIL_TIMEOUT), firmware, message)


def test_image_cut_after_the_files_still_boots_bios(images, tmp_path):
    """Half the image: GPT's backup and the end of the ESP are gone, the files are whole."""
    img = images.copy(tmp_path)
    os.truncate(img, os.path.getsize(img) // 2 // MiB * MiB)
    assert_hello(boot(img, "bios"), "bios")


# ---- libvirt --------------------------------------------------------------------------

def libvirt_xml(image, out, firmware, vm_type, serial_file=None, name="ringlet-test", disk_bus="virtio"):
    cmd = [os.path.join(root(), "scripts", "libvirt-xml"), "--name", name,
           "--image", str(image), "--firmware", firmware, "--type", vm_type,
           "--disk-bus", disk_bus, "--out", str(out)]
    if serial_file:
        cmd += ["--serial-file", str(serial_file)]
    run_tool(cmd)
    return out


def install_libvirt():
    """Install the libvirt group of scripts/deps, or skip the test saying why."""
    done = subprocess.run([os.path.join(root(), "scripts", "deps"), "--quiet", "libvirt"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True)
    if done.returncode != 0:
        pytest.skip("libvirt cannot be installed (scripts/deps libvirt):\n" + done.stdout)


@pytest.mark.parametrize("vm_type", ["kvm", "qemu"])
@pytest.mark.parametrize("firmware", ["uefi", "bios"])
def test_libvirt_xml_validates(images, tmp_path, firmware, vm_type):
    if not (shutil.which("virt-xml-validate") and shutil.which("xmllint")):
        install_libvirt()
    xml = libvirt_xml(images.hello_qcow2, tmp_path / "domain.xml", firmware, vm_type,
                      tmp_path / "serial.log")
    run_tool(["virt-xml-validate", str(xml), "domain"])
    text = xml.read_text()
    assert "type=\"%s\"" % vm_type in text.split("\n", 1)[0], text
    assert ("firmware=\"efi\"" in text) == (firmware == "uefi"), text


class Libvirtd:
    """virtlogd and libvirtd of our own, in a private mount namespace.

    The daemons see a fresh folder as /etc/libvirt, /run/libvirt,
    /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt, so they take
    our qemu.conf (QEMU runs as root), touch no state of the host's libvirt
    and can run beside it. Debian's libvirtd insists that the user and group
    libvirt-qemu exist; when they do not, the namespace gets copies of
    /etc/passwd and /etc/group that have them. virsh connects from outside
    through the socket's path in our folder. Both daemons get --timeout, so
    they also go away on their own should this process be killed.
    """

    DIRS = {"etc": "/etc/libvirt", "run": "/run/libvirt", "lib": "/var/lib/libvirt",
            "log": "/var/log/libvirt", "cache": "/var/cache/libvirt"}

    def __init__(self):
        # Short: the socket's path must fit a sockaddr_un (108 bytes).
        self.dir = tempfile.mkdtemp(prefix="ringlet-libvirt-")
        self.uri = "qemu:///system?socket=%s/run/libvirt-sock" % self.dir
        self.pids = {}

    def path(self, sub, *rest):
        return os.path.join(self.dir, sub, *rest)

    def start(self):
        for sub in self.DIRS:
            os.makedirs(self.path(sub))
        with open(self.path("etc", "qemu.conf"), "w") as f:
            f.write('user = "root"\ngroup = "root"\n')
        with open(self.path("etc", "libvirtd.conf"), "w") as f:
            f.write('log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n')
        with open(self.path("etc", "virtlogd.conf"), "w") as f:
            f.write('log_outputs = "3:file:/var/log/libvirt/virtlogd.log"\n')

        script = ["set -e"]
        for sub, target in self.DIRS.items():
            script.append("mkdir -p %s && mount --bind %s %s" % (target, self.path(sub), target))
        for name, line in (("passwd", "libvirt-qemu:x:64055:64055::/var/lib/libvirt:/bin/false"),
                           ("group", "libvirt-qemu:x:64055:")):
            if subprocess.run(["getent", name, "libvirt-qemu"],
                              stdout=subprocess.DEVNULL).returncode != 0:
                copy = self.path("etc", name)
                shutil.copyfile("/etc/" + name, copy)
                with open(copy, "a") as f:
                    f.write(line + "\n")
                script.append("mount --bind %s /etc/%s" % (copy, name))
        script += ["virtlogd -d -t 300 -p /run/libvirt/virtlogd.pid",
                   "libvirtd -d -t 300 -p /run/libvirt/libvirtd.pid"]
        done = subprocess.run(["unshare", "--mount", "--propagation", "private",
                               "sh", "-c", "\n".join(script)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=60)
        self.remember_pids()
        assert done.returncode == 0, ("could not start virtlogd and libvirtd in a "
                                      "mount namespace:\n" + done.stdout)

        deadline = time.monotonic() + 30
        while True:
            self.remember_pids()
            probe = self.virsh("version", check=False)
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError("libvirtd did not answer within 30 s:\n%s\n%s"
                                     % (probe.stdout, self.log("libvirtd.log")))
            time.sleep(0.2)

    def remember_pids(self):
        for name in ("virtlogd", "libvirtd"):
            try:
                with open(self.path("run", name + ".pid")) as f:
                    self.pids[name] = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass

    def virsh(self, *args, check=True):
        done = subprocess.run(["virsh", "-c", self.uri] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=60)
        if check:
            assert done.returncode == 0, "virsh %s failed:\n%s\n%s" % (
                " ".join(args), done.stdout, self.log("libvirtd.log"))
        return done

    def log(self, name):
        try:
            with open(self.path("log", name), errors="replace") as f:
                return "--- %s:\n%s" % (name, f.read()[-4000:])
        except OSError:
            return "--- %s: (none)" % name

    def domain_pid(self, name):
        """QEMU's pid for a domain, from libvirt's pid file, or None."""
        try:
            with open(self.path("run", "qemu", name + ".pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        """Stop what we started (by pid, after checking each is what we think)."""
        pids = dict(self.pids)
        for name, pid in sorted(pids.items(), key=lambda kv: kv[0] != "libvirtd"):
            if comm(pid) == name:
                terminate(pid)
        shutil.rmtree(self.dir, ignore_errors=True)


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def terminate(pid, wait=10):
    """SIGTERM, then SIGKILL after `wait` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + wait
        while comm(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
        if comm(pid) is not None:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def libvirt_run(request, make_xml, tmp_path):
    """Start our own libvirtd, `virsh create` the domain make_xml(path, serial,
    name) writes, and return its serial console once it printed its exit
    status (or was gone)."""
    install_libvirt()
    if os.geteuid() != 0:
        pytest.skip("starting a system libvirtd needs root")

    daemons = Libvirtd()
    request.addfinalizer(daemons.stop)
    daemons.start()

    name = "ringlet-test-%d" % os.getpid()
    serial = tmp_path / "serial.log"
    xml = make_xml(tmp_path / "domain.xml", serial, name)

    def destroy():
        if daemons.virsh("domstate", name, check=False).returncode == 0:
            daemons.virsh("destroy", name, check=False)
        pid = daemons.domain_pid(name)
        if pid and comm(pid) and comm(pid).startswith("qemu"):
            terminate(pid)
    request.addfinalizer(destroy)       # runs before daemons.stop

    daemons.virsh("create", str(xml))
    deadline = time.monotonic() + BOOT_TIMEOUT
    out = ""
    def read():
        return serial.read_text(errors="replace").replace("\r\n", "\n") if serial.exists() else ""
    while time.monotonic() < deadline:
        out = read()
        if re.search(r"^exit status: \d+$", out, re.M):
            break
        if daemons.virsh("domstate", name, check=False).returncode != 0:
            # Gone: powered off (on_poweroff=destroy). It may have written its
            # last lines after the read above: read once more.
            time.sleep(0.5)
            out = read()
            break
        time.sleep(0.25)
    else:
        raise AssertionError("no `exit status` from the libvirt guest within %d s:\n%s\n%s"
                             % (BOOT_TIMEOUT, out, daemons.log("qemu/%s.log" % name)))
    return out + daemons.log("qemu/%s.log" % name)


def test_libvirt_boot(images, tmp_path, request):
    """`virsh create` of the generated type='qemu' domain boots hello (SeaBIOS, for speed)."""
    out = libvirt_run(request, lambda xml, serial, name: libvirt_xml(
        images.hello_qcow2, xml, "bios", "qemu", serial, name), tmp_path)
    assert "ringlet-grub: loading" in out, out
    assert "Hello from Ringlet!\n" in out, out
    assert expected_argv(HELLO_ARGS) in out, out
    assert "exit status: 3\n" in out, out


def test_libvirt_boot_virtio_scsi(images, tmp_path, request):
    """The blktool image with its disk on a virtio-scsi controller (--disk-bus scsi,
    Proxmox's default): SeaBIOS and GRUB boot from it, and blktool reads the same
    disk as sda: its checksum of the first MiB is the image file's."""
    image = tmp_path / "blktool-scsi.img"
    mkimage("blktool", "-- info sha256 sda 0 1M", image)
    with open(image, "rb") as f:
        want = hashlib.sha256(f.read(MiB)).hexdigest()
    out = libvirt_run(request, lambda xml, serial, name: libvirt_xml(
        image, xml, "bios", "qemu", serial, name, disk_bus="scsi"), tmp_path)
    assert "ringlet-grub: loading" in out, out
    assert re.search(r"virtio-scsi \S+: target 0 lun 0 sda ", out), out
    assert re.search(r"^info sda size=%d block=512 ro=no .*bus=pci" % os.path.getsize(image), out, re.M), out
    assert "sha256 sda 0 %d %s\n" % (MiB, want) in out, out
    assert "***" not in out and "error:" not in out, out

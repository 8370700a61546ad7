#!/bin/sh
# Builds a Debian 12 Vagrant box for the libvirt provider from Debian's own packages, for machines
# that cannot download one from Vagrant Cloud. Run as root, from anywhere:
#     vagrant/build-box.sh            (about 5 minutes; needs debootstrap, qemu-utils, e2fsprogs)
# It adds the box as `bai/bookworm` and leaves the kernel and initrd in vagrant/.box/, where the
# Vagrantfile finds them: this box has no boot loader, libvirt boots its kernel directly.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
out="$here/.box"
work=$(mktemp -d /var/tmp/bai-box.XXXXXX)
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mirror=${BAI_DEBIAN_MIRROR:-http://deb.debian.org/debian}

step() { printf '==> %s\n' "$*"; }

for tool in debootstrap qemu-img mke2fs vagrant; do
    command -v "$tool" >/dev/null || {
        echo "build-box: $tool is missing: apt-get install debootstrap qemu-utils e2fsprogs vagrant" >&2
        exit 1
    }
done

step "debootstrap bookworm into $root"
debootstrap --variant=minbase \
    --include=systemd-sysv,linux-image-amd64,initramfs-tools,kmod,udev,dbus,openssh-server,sudo,python3,iproute2,ca-certificates,netbase \
    bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    exit 1
}

step "configure: vagrant user, DHCP on every interface, sshd"
chroot "$root" useradd -m -s /bin/bash vagrant
echo 'vagrant ALL=(ALL) NOPASSWD:ALL' >"$root/etc/sudoers.d/vagrant"
chmod 0440 "$root/etc/sudoers.d/vagrant"
mkdir -p "$root/home/vagrant/.ssh"
# Vagrant's well-known insecure key: Vagrant replaces or uses it, as for any public box.
pub=$(ls /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | head -n 1)
[ -n "$pub" ] || pub="$(dirname "$(readlink -f "$(command -v vagrant)")")/../keys/vagrant.pub"
cp "$pub" "$root/home/vagrant/.ssh/authorized_keys"
chroot "$root" chown -R vagrant:vagrant /home/vagrant/.ssh
chmod 0700 "$root/home/vagrant/.ssh"
chmod 0600 "$root/home/vagrant/.ssh/authorized_keys"
# DHCP on any interface Vagrant has not configured (its files, 50-vagrant-*, match first).
cat >"$root/etc/systemd/network/99-dhcp.network" <<'EOF'
[Match]
Name=eth* en*

[Network]
DHCP=ipv4

[DHCPv4]
ClientIdentifier=mac
EOF
# Every VM of the box must differ: systemd makes a machine id at first boot, and sshd host keys
# are made before sshd first starts.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root"/etc/ssh/ssh_host_*
mkdir -p "$root/etc/systemd/system/ssh.service.d"
printf '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n' \
    >"$root/etc/systemd/system/ssh.service.d/host-keys.conf"
chroot "$root" systemctl enable systemd-networkd ssh >/dev/null 2>&1
# No resolved in a minimal system: the resolver of vagrant-libvirt's management network.
printf 'nameserver 192.168.121.1\n' >"$root/etc/resolv.conf"
printf '/dev/vda / ext4 defaults 0 1\n' >"$root/etc/fstab"
# libvirt boots the kernel and initrd kept outside the image: rebuilding the initrd inside the
# guest (every package that triggers it) only costs minutes.
sed -i 's/^update_initramfs=.*/update_initramfs=no/' "$root/etc/initramfs-tools/update-initramfs.conf"
echo bai-box >"$root/etc/hostname"
chroot "$root" apt-get clean

step "disk image and box"
mkdir -p "$out"
cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
cp "$root"/boot/initrd.img-* "$out/initrd.img"
truncate -s 8G "$work/disk.raw"
mke2fs -q -t ext4 -d "$root" "$work/disk.raw"
qemu-img convert -O qcow2 "$work/disk.raw" "$work/box.img"
printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": 8}\n' >"$work/metadata.json"
tar -C "$work" -czf "$work/bai-bookworm.box" box.img metadata.json
vagrant box add --force --name bai/bookworm "$work/bai-bookworm.box"
step "box bai/bookworm added; kernel and initrd in $out"

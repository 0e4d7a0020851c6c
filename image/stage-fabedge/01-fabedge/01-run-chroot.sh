#!/bin/bash -e
# Inside the image: install fabedge into /opt/fabedge at its final path (venv, units,
# udev rules, the fabedge user, a warm numba cache) and enable first boot.
cd /usr/src/fabedge
make -f install.mk install PYTHON=/usr/bin/python3
systemctl enable fabedge-firstboot.service fabedge.service
# The boot partition carries an example to edit on any laptop.
install -m 0644 config/fabedge.example.toml /boot/firmware/fabedge.toml.example

#!/bin/bash -e
# Unpack the fabedge source (put in files/ by image/build.sh) into the image.
install -d "${ROOTFS_DIR}/usr/src/fabedge"
tar -C "${ROOTFS_DIR}/usr/src/fabedge" -xf files/fabedge-src.tar

; face-shield visor (tiny stand-in for the campaign tests): cut a 30x20 outline once
G21 G90
M5
G0 X10 Y10 F6000
M4 S500
G1 X40 Y10 F1500
G1 X40 Y30
G1 X10 Y30
G1 X10 Y10
M5
G0 X0 Y0


; 

; external perimeters extrusion width = 0.45mm
; perimeters extrusion width = 0.45mm
; infill extrusion width = 0.45mm
; solid infill extrusion width = 0.45mm
; top infill extrusion width = 0.40mm
; first layer extrusion width = 0.40mm

M201 X1000 Y1000 Z200 E5000 ; sets maximum accelerations, mm/sec^2
M203 X200 Y200 Z12 E120 ; sets maximum feedrates, mm / sec
M204 P1250 R1250 T1250 ; sets acceleration (P, T) and retract acceleration (R), mm/sec^2
M205 X8.00 Y8.00 Z0.40 E4.50 ; sets the jerk limits, mm/sec
M205 S0 T0 ; sets the minimum extruding and travel feed rate, mm/sec
M107
;TYPE:Custom
M115 U3.11.0 ; tell printer latest fw version
G90 ; use absolute coordinates
M83 ; extruder relative mode
M104 S215 ; set extruder temp
M140 S60 ; set bed temp
M190 S60 ; wait for bed temp
M109 S215 ; wait for extruder temp
G28 W ; home all without mesh bed level
G1 Z0.2 F720
G1 Y-3 F1000 ; go outside print area
G92 E0
G1 X60 E9 F1000 ; intro line
G1 X100 E12.5 F1000 ; intro line
G92 E0
G4 S1 ; settle
G21 ; set units to millimeters
G90 ; use absolute coordinates
M83 ; use relative distances for extrusion
; Filament gcode
M107
;LAYER_CHANGE
;Z:0.2
;HEIGHT:0.2
G1 Z.2 F10800
G92 E0
G1 E-.8 F2100
G1 Z.6 F10800
G1 X117.846 Y99.091
G1 Z.2
G1 E.8 F2100
;TYPE:Skirt/Brim
;WIDTH:0.4
G1 F1200
G1 X119.59 Y97.607 E.06801
G1 X121.303 Y96.619 E.0587
G1 X123.46 Y95.85 E.06801
G1 X125.288 Y95.725 E.05438
G1 X126.54 Y95.85 E.03736
G1 X128.697 Y96.619 E.06801
G1 X130.41 Y97.607 E.0587
G1 X132.154 Y99.091 E.06801
G1 X133.074 Y100.428 E.04817
G1 X133.694 Y101.758 E.04358
G1 X134.107 Y104.012 E.06802
G1 X134.107 Y105.988 E.05869
G1 X133.645 Y108.372 E.07211
G1 X132.997 Y109.706 E.04404
G1 X132.154 Y110.909 E.04358
G1 X130.41 Y112.393 E.06801
G1 X128.697 Y113.381 E.0587
G1 X126.54 Y114.15 E.06801
G1 X124.625 Y114.272 E.05696
G1 X123.46 Y114.15 E.03478
G1 X121.302 Y113.381 E.06801
G1 X119.59 Y112.393 E.0587
G1 X117.846 Y110.909 E.06801
G1 X117.003 Y109.706 E.04358
G1 X116.306 Y108.242 E.04817
G1 X115.893 Y105.988 E.06802
G1 X115.893 Y104.012 E.05869
G1 X116.355 Y101.628 E.07211
G1 X117.003 Y100.294 E.04404
G1 X117.811 Y99.14 E.0418
G1 E-.8 F2100
G1 Z.6 F10800
G1 X124.987 Y107.344
G1 Z.2
G1 E.8 F2100
;TYPE:Perimeter
;WIDTH:0.399999
G1 F1200
G1 X124.661 Y107.336 E.00968
G1 X123.16 Y106.47 E.05144
G1 X123.006 Y106.237 E.00831
G1 X122.807 Y105.874 E.01227
G1 X122.807 Y104.142 E.05144
G1 X122.932 Y103.892 E.00831
G1 X123.146 Y103.538 E.01228
G1 X124.647 Y102.672 E.05144
G1 X124.926 Y102.654 E.00831
G1 X125.339 Y102.664 E.01227
G1 X126.84 Y103.53 E.05144
G1 X126.994 Y103.763 E.00831
G1 X127.193 Y104.126 E.01227
G1 X127.193 Y105.858 E.05144
G1 X127.068 Y106.108 E.00831
G1 X126.854 Y106.462 E.01228
G1 X125.353 Y107.328 E.05144
G1 X125.047 Y107.345 E.00912
G1 X124.967 Y107.71 F10800
;TYPE:External perimeter
G1 F1200
G1 X124.545 Y107.682 E.01253
G1 X122.909 Y106.737 E.0561
G1 X122.618 Y106.299 E.01563
G1 X122.45 Y105.947 E.01156
G1 X122.45 Y104.058 E.05609
G1 X122.684 Y103.587 E.01563
G1 X122.905 Y103.265 E.01157
G1 X124.541 Y102.321 E.0561
G1 X125.066 Y102.288 E.01563
G1 X125.455 Y102.318 E.01156
G1 X127.091 Y103.263 E.0561
G1 X127.382 Y103.701 E.01563
G1 X127.55 Y104.053 E.01156
G1 X127.55 Y105.942 E.05609
G1 X127.316 Y106.413 E.01563
G1 X127.095 Y106.735 E.01157
G1 X125.459 Y107.679 E.0561
G1 X125.026 Y107.706 E.01287
G1 X124.733 Y107.385 F10800
G1 E-.8 F2100
G1 Z.6 F10800
G1 X126.198 Y103.283
G1 Z.2
G1 E.8 F2100
;TYPE:Solid infill
;WIDTH:0.417696
G1 F1200
G1 X126.663 Y103.748 E.02046
G1 X126.881 Y104.076 E.01227
G1 X126.925 Y104.18 E.00354
G1 X126.925 Y104.54 E.01121
G1 X125.383 Y102.998 E.06794
G1 X125.253 Y102.923 E.0047
G1 X125.182 Y102.914 E.00221
G1 X124.788 Y102.933 E.01231
G1 X126.925 Y105.07 E.0942
G1 X126.925 Y105.6 E.01652
G1 X124.431 Y103.106 E.10993
G1 X124.095 Y103.3 E.01209
G1 X126.814 Y106.019 E.11984
G1 X126.672 Y106.257 E.00864
G1 X126.577 Y106.312 E.00342
G1 X123.759 Y103.494 E.12422
G1 X123.423 Y103.688 E.01209
G1 X126.241 Y106.506 E.12422
G1 X125.905 Y106.7 E.01209
G1 X123.186 Y103.981 E.11984
G1 X123.075 Y104.205 E.00779
G1 X123.075 Y104.4 E.00608
G1 X125.569 Y106.894 E.10993
G1 X125.274 Y107.065 E.01063
G1 X125.213 Y107.069 E.00189
G1 X123.075 Y104.93 E.09425
G1 X123.075 Y105.46 E.01652
G1 X124.616 Y107.001 E.06793
G1 X123.362 Y106.277 E.04512
G1 X122.914 Y105.829 E.01975
;LAYER_CHANGE
;Z:0.4
;HEIGHT:0.2
G1 Z.4 F10800
G92 E0
G1 E-.8 F2100
G1 Z.8 F10800
G1 X125 Y107.446
G1 Z.4
G1 E.8 F2100
;TYPE:Perimeter
;WIDTH:0.449999
G1 F801
G1 X122.882 Y106.223 E.08278
G1 X122.882 Y103.778 E.08274
G1 X125.007 Y102.558 E.08293
G1 X127.118 Y103.777 E.08251
G1 X127.118 Y106.223 E.08278
G1 X125.052 Y107.416 E.08075
G1 X125 Y107.916 F10800
;TYPE:External perimeter
G1 F801
G1 X122.475 Y106.458 E.09869
G1 X122.475 Y103.543 E.09868
G1 X125.007 Y102.089 E.09884
G1 X127.525 Y103.542 E.0984
G1 X127.525 Y106.458 E.09869
G1 X125.052 Y107.886 E.09666
G1 X124.8 Y107.569 F10800
G1 X125.02 Y107.293
;TYPE:Solid infill
;WIDTH:0.451705
G1 F801
G1 X126.813 Y105.5 E.08618
G1 X126.813 Y104.922 E.01965
G1 X124.773 Y106.962 E.09805
G1 X124.406 Y106.75 E.01439
G1 X126.813 Y104.344 E.11567
G1 X126.813 Y103.953 E.01328
G1 X126.694 Y103.885 E.00466
G1 X124.04 Y106.539 E.12757
G1 X123.673 Y106.327 E.01438
G1 X126.327 Y103.673 E.12757
G1 X125.961 Y103.462 E.01439
G1 X123.307 Y106.116 E.12757
G1 X123.187 Y106.047 E.00469
G1 X123.187 Y105.657 E.01324
G1 X125.594 Y103.25 E.1157
G1 X125.228 Y103.038 E.01438
G1 X123.187 Y105.079 E.09808
G1 X123.187 Y104.501 E.01965
G1 X124.965 Y102.723 E.08544
;LAYER_CHANGE
;Z:0.6
;HEIGHT:0.2
G1 Z.6 F10800
G92 E0
G1 E-.8 F2100
G1 Z1 F10800
G1 X125 Y107.446
G1 Z.6
G1 E.8 F2100
;TYPE:Perimeter
;WIDTH:0.449999
G1 F824
G1 X122.882 Y106.223 E.08278
G1 X122.882 Y103.777 E.08278
G1 X125 Y102.554 E.08278
G1 X127.118 Y103.777 E.08278
G1 X127.118 Y106.223 E.08278
G1 X125.052 Y107.416 E.08075
G1 X125 Y107.916 F10800
;TYPE:External perimeter
G1 F824
G1 X122.475 Y106.458 E.09869
G1 X122.475 Y103.542 E.09869
G1 X125 Y102.084 E.09869
G1 X127.525 Y103.542 E.09869
G1 X127.525 Y106.458 E.09869
G1 X125.052 Y107.886 E.09666
G1 X124.8 Y107.569 F10800
G1 E-.8 F2100
G1 Z1 F10800
G1 X125.019 Y102.707
G1 Z.6
G1 E.8 F2100
;TYPE:Solid infill
;WIDTH:0.45178
G1 F824
G1 X126.813 Y104.5 E.08621
G1 X126.813 Y105.078 E.01966
G1 X124.773 Y103.038 E.09807
G1 X124.406 Y103.25 E.01439
G1 X126.813 Y105.656 E.1157
G1 X126.813 Y106.047 E.01327
G1 X126.693 Y106.115 E.00468
G1 X124.04 Y103.461 E.12759
G1 X123.673 Y103.673 E.01439
G1 X126.327 Y106.327 E.12759
G1 X125.96 Y106.539 E.01439
G1 X123.306 Y103.885 E.12759
G1 X123.187 Y103.953 E.00467
G1 X123.187 Y104.344 E.01327
G1 X125.594 Y106.75 E.1157
G1 X125.227 Y106.962 E.01439
G1 X123.187 Y104.922 E.09807
G1 X123.187 Y105.5 E.01966
G1 X124.98 Y107.293 E.0862
M106 S252.45
;LAYER_CHANGE
;Z:0.8
;HEIGHT:0.2
G1 Z.8 F10800
G92 E0
G1 X125 Y107.446
;TYPE:Perimeter
;WIDTH:0.449999
G1 F781
G1 X122.882 Y106.223 E.08278
G1 X122.882 Y103.777 E.08278
G1 X125 Y102.554 E.08278
G1 X127.118 Y103.777 E.08278
G1 X127.118 Y106.223 E.08278
G1 X125.052 Y107.416 E.08075
G1 X125 Y107.916 F10800
;TYPE:External perimeter
G1 F781
G1 X122.475 Y106.458 E.09869
G1 X122.475 Y103.542 E.09869
G1 X125 Y102.084 E.09869
G1 X127.525 Y103.542 E.09869
G1 X127.525 Y106.458 E.09869
G1 X125.052 Y107.886 E.09666
G1 X124.8 Y107.569 F10800
G1 X125.019 Y107.293
;TYPE:Solid infill
;WIDTH:0.451781
G1 F781
G1 X126.813 Y105.5 E.08621
G1 X126.813 Y104.922 E.01966
G1 X124.773 Y106.962 E.09808
G1 X124.406 Y106.75 E.01439
G1 X126.813 Y104.344 E.1157
G1 X126.813 Y103.953 E.01327
G1 X126.693 Y103.885 E.00468
G1 X124.04 Y106.539 E.12759
G1 X123.673 Y106.327 E.01439
G1 X126.327 Y103.673 E.12759
G1 X125.96 Y103.461 E.01439
G1 X123.306 Y106.115 E.12759
G1 X123.187 Y106.047 E.00467
G1 X123.187 Y105.656 E.01327
G1 X125.594 Y103.25 E.1157
G1 X125.227 Y103.038 E.01439
G1 X123.187 Y105.078 E.09807
G1 X123.187 Y104.5 E.01966
G1 X124.98 Y102.707 E.0862
;LAYER_CHANGE
;Z:1
;HEIGHT:0.2
G1 Z1 F10800
G92 E0
G1 E-.8 F2100
G1 Z1.4 F10800
G1 X125 Y107.446
G1 Z1
G1 E.8 F2100
;TYPE:Perimeter
;WIDTH:0.449999
G1 F824
G1 X122.882 Y106.223 E.08278
G1 X122.882 Y103.777 E.08278
G1 X125 Y102.554 E.08278
G1 X127.118 Y103.777 E.08278
G1 X127.118 Y106.223 E.08278
G1 X125.052 Y107.416 E.08075
G1 X125 Y107.916 F10800
;TYPE:External perimeter
G1 F824
G1 X122.475 Y106.458 E.09869
G1 X122.475 Y103.542 E.09869
G1 X125 Y102.084 E.09869
G1 X127.525 Y103.542 E.09869
G1 X127.525 Y106.458 E.09869
G1 X125.052 Y107.886 E.09666
G1 X124.8 Y107.569 F10800
G1 E-.8 F2100
G1 Z1.4 F10800
G1 X125.019 Y102.707
G1 Z1
G1 E.8 F2100
;TYPE:Solid infill
;WIDTH:0.451781
G1 F824
G1 X126.813 Y104.5 E.08621
G1 X126.813 Y105.078 E.01966
G1 X124.773 Y103.038 E.09808
G1 X124.406 Y103.25 E.01439
G1 X126.813 Y105.656 E.1157
G1 X126.813 Y106.047 E.01327
G1 X126.693 Y106.115 E.00468
G1 X124.04 Y103.461 E.12759
G1 X123.673 Y103.673 E.01439
G1 X126.327 Y106.327 E.12759
G1 X125.96 Y106.539 E.01439
G1 X123.306 Y103.885 E.1276
G1 X123.187 Y103.953 E.00467
G1 X123.187 Y104.344 E.01327
G1 X125.594 Y106.75 E.1157
G1 X125.227 Y106.962 E.01439
G1 X123.187 Y104.922 E.09807
G1 X123.187 Y105.5 E.01966
G1 X124.98 Y107.293 E.0862
;LAYER_CHANGE
;Z:1.2
;HEIGHT:0.2
G1 Z1.2 F10800
G92 E0
G1 X125 Y107.446
;TYPE:Perimeter
;WIDTH:0.449999
G1 F781
G1 X122.882 Y106.223 E.08278
G1 X122.882 Y103.777 E.08278
G1 X125 Y102.554 E.08278
G1 X127.118 Y103.777 E.08278
G1 X127.118 Y106.223 E.08278
G1 X125.052 Y107.416 E.08075
G1 X125 Y107.916 F10800
;TYPE:External perimeter
G1 F781
G1 X122.475 Y106.458 E.09869
G1 X122.475 Y103.542 E.09869
G1 X125 Y102.084 E.09869
G1 X127.525 Y103.542 E.09869
G1 X127.525 Y106.458 E.09869
G1 X125.052 Y107.886 E.09666
G1 X124.8 Y107.569 F10800
G1 X125.019 Y107.293
;TYPE:Solid infill
;WIDTH:0.451781
G1 F781
G1 X126.813 Y105.5 E.08621
G1 X126.813 Y104.922 E.01966
G1 X124.773 Y106.962 E.09808
G1 X124.406 Y106.75 E.01439
G1 X126.813 Y104.344 E.1157
G1 X126.813 Y103.953 E.01327
G1 X126.693 Y103.885 E.00468
G1 X124.04 Y106.539 E.12759
G1 X123.673 Y106.327 E.01439
G1 X126.327 Y103.673 E.12759
G1 X125.96 Y103.461 E.01439
G1 X123.306 Y106.115 E.12759
G1 X123.187 Y106.047 E.00467
G1 X123.187 Y105.656 E.01327
G1 X125.594 Y103.25 E.1157
G1 X125.227 Y103.038 E.01439
G1 X123.187 Y105.078 E.09807
G1 X123.187 Y104.5 E.01966
G1 X124.98 Y102.707 E.0862
;LAYER_CHANGE
;Z:1.4
;HEIGHT:0.2
G1 Z1.4 F10800
G92 E0
G1 E-.8 F2100
G1 Z1.8 F10800
G1 X125 Y107.446
G1 Z1.4
G1 E.8 F2100
;TYPE:Perimeter
;WIDTH:0.449999
G1 F824
G1 X122.882 Y106.223 E.08278
G1 X122.882 Y103.777 E.08278
G1 X125 Y102.554 E.08278
G1 X127.118 Y103.777 E.08278
G1 X127.118 Y106.223 E.08278
G1 X125.052 Y107.416 E.08075
G1 X125 Y107.916 F10800
;TYPE:External perimeter
G1 F824
G1 X122.475 Y106.458 E.09869
G1 X122.475 Y103.542 E.09869
G1 X125 Y102.084 E.09869
G1 X127.525 Y103.542 E.09869
G1 X127.525 Y106.458 E.09869
G1 X125.052 Y107.886 E.09666
G1 X124.8 Y107.569 F10800
G1 E-.8 F2100
G1 Z1.8 F10800
G1 X125.019 Y102.707
G1 Z1.4
G1 E.8 F2100
;TYPE:Solid infill
;WIDTH:0.451781
G1 F824
G1 X126.813 Y104.5 E.08621
G1 X126.813 Y105.078 E.01966
G1 X124.773 Y103.038 E.09807
G1 X124.406 Y103.25 E.01439
G1 X126.813 Y105.656 E.1157
G1 X126.813 Y106.047 E.01327
G1 X126.693 Y106.115 E.00468
G1 X124.04 Y103.461 E.12759
G1 X123.673 Y103.673 E.01439
G1 X126.327 Y106.327 E.1276
G1 X125.96 Y106.539 E.01439
G1 X123.306 Y103.885 E.12759
G1 X123.187 Y103.953 E.00467
G1 X123.187 Y104.344 E.01327
G1 X125.594 Y106.75 E.1157
G1 X125.227 Y106.962 E.01439
G1 X123.187 Y104.922 E.09807
G1 X123.187 Y105.5 E.01966
G1 X124.98 Y107.293 E.0862
;LAYER_CHANGE
;Z:1.6
;HEIGHT:0.2
G1 Z1.6 F10800
G92 E0
G1 X125 Y107.446
;TYPE:Perimeter
;WIDTH:0.449999
G1 F781
G1 X122.882 Y106.223 E.08278
G1 X122.882 Y103.777 E.08278
G1 X125 Y102.554 E.08278
G1 X127.118 Y103.777 E.08278
G1 X127.118 Y106.223 E.08278
G1 X125.052 Y107.416 E.08075
G1 X125 Y107.916 F10800
;TYPE:External perimeter
G1 F781
G1 X122.475 Y106.458 E.09869
G1 X122.475 Y103.542 E.09869
G1 X125 Y102.084 E.09869
G1 X127.525 Y103.542 E.09869
G1 X127.525 Y106.458 E.09869
G1 X125.052 Y107.886 E.09666
G1 X124.8 Y107.569 F10800
G1 X125.019 Y107.293
;TYPE:Solid infill
;WIDTH:0.451781
G1 F781
G1 X126.813 Y105.5 E.08621
G1 X126.813 Y104.922 E.01966
G1 X124.773 Y106.962 E.09808
G1 X124.406 Y106.75 E.01439
G1 X126.813 Y104.344 E.1157
G1 X126.813 Y103.953 E.01327
G1 X126.693 Y103.885 E.00468
G1 X124.04 Y106.539 E.12759
G1 X123.673 Y106.327 E.01439
G1 X126.327 Y103.673 E.12759
G1 X125.96 Y103.461 E.01439
G1 X123.306 Y106.115 E.12759
G1 X123.187 Y106.047 E.00467
G1 X123.187 Y105.656 E.01327
G1 X125.594 Y103.25 E.1157
G1 X125.227 Y103.038 E.01439
G1 X123.187 Y105.078 E.09807
G1 X123.187 Y104.5 E.01966
G1 X124.98 Y102.707 E.0862
;LAYER_CHANGE
;Z:1.8
;HEIGHT:0.2
G1 Z1.8 F10800
G92 E0
G1 E-.8 F2100
G1 Z2.2 F10800
G1 X125.033 Y107.269
G1 Z1.8
G1 E.8 F2100
;TYPE:Perimeter
;WIDTH:0.449999
G1 F844
G1 X124.662 Y107.25 E.01258
G1 X123.213 Y106.414 E.05662
G1 X122.882 Y105.859 E.02187
G1 X122.882 Y104.16 E.05752
G1 X123.197 Y103.595 E.02187
G1 X124.669 Y102.746 E.05753
G1 X125.315 Y102.736 E.02187
G1 X126.787 Y103.586 E.05753
G1 X127.118 Y104.141 E.02187
G1 X127.118 Y105.84 E.05752
G1 X126.803 Y106.405 E.02187
G1 X125.331 Y107.254 E.05753
G1 X125.093 Y107.269 E.00807
G1 X124.989 Y107.684 F10800
;TYPE:External perimeter
G1 F844
G1 X124.523 Y107.64 E.01584
G1 X122.927 Y106.719 E.06239
G1 X122.729 Y106.42 E.01211
G1 X122.475 Y105.942 E.01833
G1 X122.475 Y104.064 E.06358
G1 X122.634 Y103.744 E.01211
G1 X122.921 Y103.284 E.01834
G1 X124.548 Y102.345 E.06358
G1 X124.905 Y102.323 E.01211
G1 X125.446 Y102.342 E.01833
G1 X127.073 Y103.281 E.06358
G1 X127.271 Y103.58 E.01211
G1 X127.525 Y104.058 E.01833
G1 X127.525 Y105.936 E.06358
G1 X127.366 Y106.256 E.01211
G1 X127.079 Y106.716 E.01834
G1 X125.452 Y107.655 E.06358
G1 X125.049 Y107.68 E.01366
G1 X124.761 Y107.355 F10800
G1 E-.8 F2100
G1 Z2.2 F10800
G1 X126.998 Y104.709
G1 Z1.8
G1 E.8 F2100
;TYPE:Top solid infill
;WIDTH:0.402723
G1 F844
G1 X125.397 Y103.107 E.06775
G1 X125.225 Y103.008 E.00596
G1 X124.8 Y103.019 E.0127
G1 X126.838 Y105.057 E.08621
G1 X126.838 Y105.566 E.01522
G1 X124.461 Y103.189 E.10055
G1 X124.139 Y103.375 E.01114
G1 X126.738 Y105.975 E.10998
G1 X126.613 Y106.191 E.00746
G1 X126.506 Y106.252 E.00368
G1 X123.816 Y103.562 E.11383
G1 X123.493 Y103.748 E.01114
G1 X126.184 Y106.438 E.11383
G1 X125.861 Y106.625 E.01114
G1 X123.262 Y104.025 E.10998
G1 X123.162 Y104.225 E.00669
G1 X123.162 Y104.435 E.00626
G1 X125.539 Y106.811 E.10054
G1 X125.248 Y106.979 E.01005
G1 X125.201 Y106.982 E.00142
G1 X123.162 Y104.943 E.08624
G1 X123.162 Y105.452 E.01522
G1 X124.873 Y107.163 E.07239
G1 E-.8 F2100
G1 Z2.2 F10800
M107
;TYPE:Custom
; Filament-specific end gcode 
;END gcode for filament
G1 Z11.8 F720
M104 S0
M140 S0
M107
G1 X0 Y200 F3000
M84
; filament used [mm] = 21.43
; filament used [cm3] = 0.05
; total filament used [g] = 0.00
; total filament cost = 0.00
; estimated printing time (normal mode) = 1m 1s
; estimated printing time (silent mode) = 1m 2s

; prusaslicer_config = begin
; avoid_crossing_perimeters = 0
; avoid_crossing_perimeters_max_detour = 0
; bed_shape = 0x0,250x0,250x210,0x210
; bed_temperature = 60
; before_layer_gcode = 
; between_objects_gcode = 
; bottom_fill_pattern = monotonic
; bottom_solid_layers = 4
; bottom_solid_min_thickness = 0
; bridge_acceleration = 0
; bridge_angle = 0
; bridge_fan_speed = 100
; bridge_flow_ratio = 1
; bridge_speed = 60
; brim_separation = 0
; brim_type = outer_only
; brim_width = 0
; clip_multipart_objects = 1
; color_change_gcode = M600
; complete_objects = 0
; cooling = 1
; cooling_tube_length = 5
; cooling_tube_retraction = 91.5
; default_acceleration = 0
; deretract_speed = 0
; disable_fan_first_layers = 3
; dont_support_bridges = 1
; draft_shield = disabled
; duplicate_distance = 6
; elefant_foot_compensation = 0
; end_filament_gcode = "; Filament-specific end gcode \n;END gcode for filament\n"
; end_gcode = G1 Z{max_layer_z + 10} F720\nM104 S0\nM140 S0\nM107\nG1 X0 Y200 F3000\nM84
; ensure_vertical_shell_thickness = 0
; external_perimeter_extrusion_width = 0
; external_perimeter_speed = 25
; external_perimeters_first = 0
; extra_loading_move = -2
; extra_perimeters = 1
; extruder_clearance_height = 20
; extruder_clearance_radius = 20
; extruder_colour = ""
; extruder_offset = 0x0
; extrusion_axis = E
; extrusion_multiplier = 1
; extrusion_width = 0
; fan_always_on = 0
; fan_below_layer_time = 60
; filament_colour = #29B2B2
; filament_cooling_final_speed = 3.4
; filament_cooling_initial_speed = 2.2
; filament_cooling_moves = 4
; filament_cost = 0
; filament_density = 0
; filament_diameter = 1.75
; filament_load_time = 0
; filament_loading_speed = 28
; filament_loading_speed_start = 3
; filament_max_volumetric_speed = 0
; filament_minimal_purge_on_wipe_tower = 15
; filament_notes = ""
; filament_ramming_parameters = "120 100 6.6 6.8 7.2 7.6 7.9 8.2 8.7 9.4 9.9 10.0| 0.05 6.6 0.45 6.8 0.95 7.8 1.45 8.3 1.95 9.7 2.45 10 2.95 7.6 3.45 7.6 3.95 7.6 4.45 7.6 4.95 7.6"
; filament_settings_id = ""
; filament_soluble = 0
; filament_spool_weight = 0
; filament_toolchange_delay = 0
; filament_type = PLA
; filament_unload_time = 0
; filament_unloading_speed = 90
; filament_unloading_speed_start = 100
; fill_angle = 45
; fill_density = 15%
; fill_pattern = gyroid
; first_layer_acceleration = 0
; first_layer_acceleration_over_raft = 0
; first_layer_bed_temperature = 60
; first_layer_extrusion_width = 200%
; first_layer_height = 0.2
; first_layer_speed = 20
; first_layer_speed_over_raft = 30
; first_layer_temperature = 215
; full_fan_speed_layer = 0
; fuzzy_skin = none
; fuzzy_skin_point_dist = 0.8
; fuzzy_skin_thickness = 0.3
; gap_fill_enabled = 1
; gap_fill_speed = 20
; gcode_comments = 0
; gcode_flavor = marlin
; gcode_label_objects = 0
; gcode_resolution = 0.0125
; gcode_substitutions = 
; high_current_on_filament_swap = 0
; infill_acceleration = 0
; infill_anchor = 600%
; infill_anchor_max = 50
; infill_every_layers = 1
; infill_extruder = 1
; infill_extrusion_width = 0
; infill_first = 0
; infill_only_where_needed = 0
; infill_overlap = 25%
; infill_speed = 200
; interface_shells = 0
; ironing = 0
; ironing_flowrate = 15%
; ironing_spacing = 0.1
; ironing_speed = 15
; ironing_type = top
; layer_gcode = G92 E0
; layer_height = 0.2
; machine_limits_usage = emit_to_gcode
; machine_max_acceleration_e = 5000,5000
; machine_max_acceleration_extruding = 1250,1250
; machine_max_acceleration_retracting = 1250,1250
; machine_max_acceleration_travel = 1500,1250
; machine_max_acceleration_x = 1000,960
; machine_max_acceleration_y = 1000,960
; machine_max_acceleration_z = 200,200
; machine_max_feedrate_e = 120,120
; machine_max_feedrate_x = 200,100
; machine_max_feedrate_y = 200,100
; machine_max_feedrate_z = 12,12
; machine_max_jerk_e = 4.5,4.5
; machine_max_jerk_x = 8,8
; machine_max_jerk_y = 8,8
; machine_max_jerk_z = 0.4,0.4
; machine_min_extruding_rate = 0,0
; machine_min_travel_rate = 0,0
; max_fan_speed = 100
; max_layer_height = 0
; max_print_height = 210
; max_print_speed = 80
; max_volumetric_extrusion_rate_slope_negative = 0
; max_volumetric_extrusion_rate_slope_positive = 0
; max_volumetric_speed = 0
; min_bead_width = 85%
; min_fan_speed = 35
; min_feature_size = 25%
; min_layer_height = 0.07
; min_print_speed = 10
; min_skirt_length = 0
; mmu_segmented_region_max_width = 0
; notes = 
; nozzle_diameter = 0.4
; only_retract_when_crossing_perimeters = 0
; ooze_prevention = 0
; output_filename_format = [input_filename_base].gcode
; overhangs = 1
; parking_pos_retraction = 92
; pause_print_gcode = M601
; perimeter_acceleration = 0
; perimeter_extruder = 1
; perimeter_extrusion_width = 0
; perimeter_generator = arachne
; perimeter_speed = 45
; perimeters = 2
; physical_printer_settings_id = 
; post_process = 
; print_settings_id = 
; printer_model = 
; printer_notes = 
; printer_settings_id = 
; printer_technology = FFF
; raft_contact_distance = 0.1
; raft_expansion = 1.5
; raft_first_layer_density = 90%
; raft_first_layer_expansion = 3
; raft_layers = 0
; remaining_times = 0
; resolution = 0
; retract_before_travel = 2
; retract_before_wipe = 0%
; retract_layer_change = 0
; retract_length = 0.8
; retract_length_toolchange = 10
; retract_lift = 0.4
; retract_lift_above = 0
; retract_lift_below = 0
; retract_restart_extra = 0
; retract_restart_extra_toolchange = 0
; retract_speed = 35
; seam_position = aligned
; silent_mode = 1
; single_extruder_multi_material = 0
; single_extruder_multi_material_priming = 1
; skirt_distance = 6
; skirt_height = 1
; skirts = 1
; slice_closing_radius = 0.049
; slicing_mode = regular
; slowdown_below_layer_time = 5
; small_perimeter_speed = 15
; solid_infill_below_area = 70
; solid_infill_every_layers = 0
; solid_infill_extruder = 1
; solid_infill_extrusion_width = 0
; solid_infill_speed = 200
; spiral_vase = 0
; standby_temperature_delta = -5
; start_filament_gcode = "; Filament gcode\n"
; start_gcode = M115 U3.11.0 ; tell printer latest fw version\nG90 ; use absolute coordinates\nM83 ; extruder relative mode\nM104 S[first_layer_temperature] ; set extruder temp\nM140 S[first_layer_bed_temperature] ; set bed temp\nM190 S[first_layer_bed_temperature] ; wait for bed temp\nM109 S[first_layer_temperature] ; wait for extruder temp\nG28 W ; home all without mesh bed level\nG1 Z0.2 F720\nG1 Y-3 F1000 ; go outside print area\nG92 E0\nG1 X60 E9 F1000 ; intro line\nG1 X100 E12.5 F1000 ; intro line\nG92 E0\nG4 S1 ; settle
; support_material = 0
; support_material_angle = 0
; support_material_auto = 1
; support_material_bottom_contact_distance = 0
; support_material_bottom_interface_layers = -1
; support_material_buildplate_only = 0
; support_material_closing_radius = 2
; support_material_contact_distance = 0.2
; support_material_enforce_layers = 0
; support_material_extruder = 1
; support_material_extrusion_width = 0
; support_material_interface_contact_loops = 0
; support_material_interface_extruder = 1
; support_material_interface_layers = 3
; support_material_interface_pattern = rectilinear
; support_material_interface_spacing = 0
; support_material_interface_speed = 100%
; support_material_pattern = rectilinear
; support_material_spacing = 2.5
; support_material_speed = 60
; support_material_style = grid
; support_material_synchronize_layers = 0
; support_material_threshold = 0
; support_material_with_sheath = 1
; support_material_xy_spacing = 50%
; temperature = 215
; template_custom_gcode = 
; thick_bridges = 1
; thin_walls = 1
; threads = 2
; thumbnails = 
; thumbnails_format = PNG
; toolchange_gcode = 
; top_fill_pattern = monotonic
; top_infill_extrusion_width = 0
; top_solid_infill_speed = 50
; top_solid_layers = 5
; top_solid_min_thickness = 0
; travel_speed = 180
; travel_speed_z = 0
; use_firmware_retraction = 0
; use_relative_e_distances = 1
; use_volumetric_e = 0
; variable_layer_height = 1
; wall_distribution_count = 1
; wall_transition_angle = 10
; wall_transition_filter_deviation = 25%
; wall_transition_length = 100%
; wipe = 0
; wipe_into_infill = 0
; wipe_into_objects = 0
; wipe_tower = 0
; wipe_tower_bridging = 10
; wipe_tower_brim_width = 2
; wipe_tower_no_sparse_layers = 0
; wipe_tower_rotation_angle = 0
; wipe_tower_width = 60
; wipe_tower_x = 180
; wipe_tower_y = 140
; wiping_volumes_extruders = 70,70,70,70,70,70,70,70,70,70
; wiping_volumes_matrix = 0,140,140,140,140,140,0,140,140,140,140,140,0,140,140,140,140,140,0,140,140,140,140,140,0
; xy_size_compensation = 0
; z_offset = 0
; prusaslicer_config = end

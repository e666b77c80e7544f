# Written by os-failbackd from the GUI settings; changes here *will* be lost.
{% if helpers.exists('OPNsense.failbackd.general.enabled') and OPNsense.failbackd.general.enabled == '1' %}
failbackd_enable="YES"
{% else %}
failbackd_enable="NO"
{% endif %}
failbackd_config="/usr/local/etc/failbackd.toml"

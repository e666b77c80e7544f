{#
 # Services > failbackd > Settings: the general form and the probe grid (node_exporter's
 # form pattern plus net/ndp-proxy-go's grid). Apply saves (the model asks failbackd
 # check-config), then reconfigure = template reload OPNsense/Failbackd and a reload (SIGHUP),
 # a start, or release + stop when disabled (Api/ServiceController.php).
 #}
<script>
    $(document).ready(function () {
        mapDataToFormUI({'frm_general_settings': '/api/failbackd/settings/get'}).done(function () {
            formatTokenizersUI();
            $('.selectpicker').selectpicker('refresh');
            updateServiceControlUI('failbackd');
        });

        $('#grid-probes').UIBootgrid({
            search: '/api/failbackd/settings/search_probe',
            get: '/api/failbackd/settings/get_probe/',
            set: '/api/failbackd/settings/set_probe/',
            add: '/api/failbackd/settings/add_probe/',
            del: '/api/failbackd/settings/del_probe/',
            toggle: '/api/failbackd/settings/toggle_probe/'
        });

        // The probe dialog shows the fields of the chosen type only (net/frr bgp.volt pattern).
        $('#probe\\.type').change(function () {
            $('.probe_type_specific').closest('tr').hide();
            $('.type_' + $(this).val()).closest('tr').show();
        });

        $('#reconfigureAct').SimpleActionButton({
            onPreAction: function () {
                const dfObj = new $.Deferred();
                saveFormToEndpoint('/api/failbackd/settings/set', 'frm_general_settings', function () {
                    dfObj.resolve();
                }, true, function () { dfObj.reject(); });
                return dfObj;
            },
            onAction: function (data) {
                if (data && data.status === 'failed' && data.message) {
                    BootstrapDialog.show({type: BootstrapDialog.TYPE_DANGER, title: 'failbackd', message: $('<pre></pre>').text(data.message)});
                }
                updateServiceControlUI('failbackd');
            }
        });
    });
</script>

<div class="content-box">
    {{ partial('layout_partials/base_form', ['fields': generalForm, 'id': 'frm_general_settings']) }}
</div>
<div class="content-box">
    <table id="grid-probes" class="table table-condensed table-hover table-striped" data-editDialog="DialogProbe">
        <thead>
            <tr>
                <th data-column-id="uuid" data-type="string" data-identifier="true" data-visible="false">{{ lang._('ID') }}</th>
                <th data-column-id="enabled" data-width="6em" data-type="string" data-formatter="rowtoggle">{{ lang._('Enabled') }}</th>
                <th data-column-id="name" data-type="string">{{ lang._('Name') }}</th>
                <th data-column-id="type" data-type="string">{{ lang._('Type') }}</th>
                <th data-column-id="interval" data-type="string">{{ lang._('Interval (ms)') }}</th>
                <th data-column-id="rise" data-type="string">{{ lang._('Rise') }}</th>
                <th data-column-id="fall" data-type="string">{{ lang._('Fall') }}</th>
                <th data-column-id="required" data-type="string" data-formatter="boolean">{{ lang._('Required') }}</th>
                <th data-column-id="commands" data-width="7em" data-formatter="commands" data-sortable="false">{{ lang._('Commands') }}</th>
            </tr>
        </thead>
        <tbody></tbody>
        <tfoot>
            <tr>
                <td></td>
                <td>
                    <button data-action="add" type="button" class="btn btn-xs btn-primary"><span class="fa fa-fw fa-plus"></span></button>
                    <button data-action="deleteSelected" type="button" class="btn btn-xs btn-default"><span class="fa fa-fw fa-trash-o"></span></button>
                </td>
            </tr>
        </tfoot>
    </table>
</div>
<div class="content-box">
    <div class="col-md-12">
        <br/>
        <button class="btn btn-primary" id="reconfigureAct"
                data-endpoint="/api/failbackd/service/reconfigure"
                data-label="{{ lang._('Apply') }}"
                data-error-title="{{ lang._('Error reconfiguring failbackd') }}"
                type="button"></button>
        <br/><br/>
    </div>
</div>

{{ partial('layout_partials/base_dialog', ['fields': formDialogProbe, 'id': 'DialogProbe', 'label': lang._('Edit probe')]) }}
